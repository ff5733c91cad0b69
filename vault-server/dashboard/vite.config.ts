/**
 * The dashboard's build: a static bundle under /dashboard/, served by the
 * vault with a strict Content-Security-Policy (no inline script or style in
 * index.html, no module-preload polyfill), hashed asset names for long-lived
 * caching.
 *
 * Dev server: `npx vite vault-server/dashboard` proxies /v1 to the vault
 * (VAULT_URL, default https://127.0.0.1:8443, self-signed certificate accepted).
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import preact from '@preact/preset-vite'

const root = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root,
  base: '/dashboard/',
  plugins: [preact()],
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    // never inline assets as data: URLs into scripts/styles beyond small images (img-src allows data:)
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/v1': { target: process.env.VAULT_URL ?? 'https://127.0.0.1:8443', changeOrigin: false, secure: false },
    },
  },
})
