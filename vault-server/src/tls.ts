/**
 * Development TLS: a self-signed certificate (ECDSA P-256, SAN localhost,
 * 127.0.0.1, ::1 and any extra names) made with @peculiar/x509. For
 * production use a certificate devices trust: snapd only uses the system CA
 * bundle (spec §5.5).
 */
import { encodePem, VaultError } from '@sv/shared'
import { getWebCrypto } from '@sv/shared/node'
import { X509Certificate, createPrivateKey, randomBytes, type webcrypto } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext } from 'node:tls'

export async function generateSelfSigned(options: { names?: string[]; days?: number } = {}): Promise<{ certPem: string; keyPem: string }> {
  // loaded on demand: @peculiar/x509 needs the reflect-metadata polyfill and
  // is only used by `init` and the demo
  await import('reflect-metadata')
  const x509 = await import('@peculiar/x509')
  const crypto = getWebCrypto()
  x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair
  const names = ['localhost', '127.0.0.1', '::1', ...(options.names ?? [])]
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: 'CN=serial-vault development',
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + (options.days ?? 825) * 86400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (/^[\d.]+$|:/.test(n) ? { type: 'ip', value: n } : { type: 'dns', value: n }))),
    ],
  })
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey as never)
  return { certPem: cert.toString('pem'), keyPem: encodePem('PRIVATE KEY', new Uint8Array(pkcs8 as ArrayBuffer)) }
}

/**
 * Reads the TLS certificate and key and checks them before anything listens,
 * so that a missing, garbled or mismatched file is one typed error naming the
 * file (SV_CONFIG_INVALID, exit 2) instead of a stack trace from the TLS
 * server (issue 13). details: { file, reason: unreadable | cert-invalid |
 * key-invalid | mismatch, cause }. The key's content never appears in it.
 */
export async function readTlsFiles(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  const fail = (file: string, reason: string, cause: string, hint: string): never => {
    throw new VaultError('SV_CONFIG_INVALID', `TLS ${file}: ${cause}${hint}`, { details: { file, reason, cause, issues: [`tls: ${file}: ${cause}`] } })
  }
  const read = async (file: string): Promise<Buffer> => {
    try {
      return await readFile(file)
    } catch (e) {
      return fail(file, 'unreadable', `cannot read (${(e as NodeJS.ErrnoException).code})`, '; give --tls-cert/--tls-key, run init, or --plain-http behind a TLS proxy')
    }
  }
  const cert = await read(certFile)
  const key = await read(keyFile)
  try {
    new X509Certificate(cert)
  } catch (e) {
    fail(certFile, 'cert-invalid', `not a PEM certificate (${firstLine(e)})`, '')
  }
  try {
    createPrivateKey(key)
  } catch (e) {
    // the error text of a key parse never holds key material, only OpenSSL's reason
    fail(keyFile, 'key-invalid', `not a PEM private key (${firstLine(e)})`, '')
  }
  try {
    createSecureContext({ cert, key })
  } catch (e) {
    fail(keyFile, 'mismatch', `does not match the certificate ${certFile} (${firstLine(e)})`, '')
  }
  return { cert, key }
}

function firstLine(e: unknown): string {
  return String((e as Error).message ?? e).split('\n')[0]!.slice(0, 200)
}
