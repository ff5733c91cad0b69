/** Version reported by `--version` and `GET /v1/version`. */
export const VERSION = '0.1.0'
