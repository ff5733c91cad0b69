/**
 * Development TLS: a self-signed certificate (ECDSA P-256, SAN localhost,
 * 127.0.0.1, ::1 and any extra names) made with @peculiar/x509. For
 * production use a certificate devices trust: snapd only uses the system CA
 * bundle (spec §5.5).
 */
import { encodePem } from '@sv/shared'
import { getWebCrypto } from '@sv/shared/node'
import { randomBytes, type webcrypto } from 'node:crypto'

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
