export const BASE = '/dashboard'
