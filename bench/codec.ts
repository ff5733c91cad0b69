/**
 * Codec benchmark, in one run so the ratios are fair on a noisy machine:
 *  1. sign: signAssertion (serial, RSA-4096, SHA-512) against raw
 *     crypto.sign('sha512') on the same key and content size; rounds are
 *     interleaved so both see the same machine state. Goal: overhead <= 5%.
 *  2. verify: verifySignature of a serial against raw crypto.verify.
 *  3. decode: a 10,000-assertion stream (serial assertions), assertions/s and MB/s.
 *  Verify and decode also run once on the portable crypto platform (@noble
 *  digests, WebCrypto verification: what a browser gets), for information;
 *  everything else runs on @sv/shared/node's, as the vault and the agent do.
 *
 *   npm run bench -- codec [--rounds N] [--per-round N]
 */
import { createPrivateKey, createPublicKey, sign as rawSign, verify as rawVerify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { Buffer } from 'node:buffer'
import { decodeStream, formatContent, setCryptoPlatform, signAssertion, verifySignature, webCryptoPlatform, PublicKey, ASSERTION_TYPES, type Assertion } from '@sv/shared'
import { NodeKeySigner, WebCryptoSigner } from '@sv/shared/node'
import { randomBytes } from 'node:crypto'
import { arg, median, report, type BenchResult } from './lib.js'

const VECTORS = new URL('../fixtures/snapd-vectors/', import.meta.url)

export async function codecBench(argv: string[]): Promise<BenchResult> {
  const rounds = Number(arg(argv, '--rounds', '30'))
  const perRound = Number(arg(argv, '--per-round', '10'))
  const brandPem = readFileSync(new URL('keys/brand.key.pem', VECTORS), 'utf8')
  const devicePub = PublicKey.fromPem(readFileSync(new URL('keys/device.pub.pem', VECTORS), 'utf8'))
  // The codec's overhead is measured with a signer that does exactly one RSA
  // operation per signature (NodeKeySigner); the WebCrypto signer's extra cost
  // (Node's WebCrypto, through libuv's pool) is shown apart.
  const signer = NodeKeySigner.fromPem(brandPem)
  const webSigner = await WebCryptoSigner.fromPem(brandPem)
  const keyObject = createPrivateKey(brandPem)
  const pubObject = createPublicKey(brandPem)

  let n = 0
  const headers = () => ({
    'authority-id': 'acme-brand',
    'brand-id': 'acme-brand',
    model: 'acme-pi-gateway',
    serial: `BENCH${(n++).toString().padStart(8, '0')}`,
    'device-key': devicePub.encode(),
    'device-key-sha3-384': devicePub.id,
    timestamp: '2025-01-01T00:00:00Z',
  })
  const sample = await signAssertion('serial', headers(), undefined, signer)
  const rawData = Buffer.alloc(sample.content.length + 12, 0x61) // same bytes hashed as the codec: content + prefix + trailer

  // warm up both paths
  for (let i = 0; i < 5; i++) {
    await signAssertion('serial', headers(), undefined, signer)
    rawSign('sha512', rawData, keyObject)
  }

  // Each round times the three paths back to back (rotating the order), and
  // the overhead is the median of the per-round ratios: a slow stretch of the
  // machine hits both sides of a ratio, not just one.
  const times: Record<'codec' | 'raw' | 'web', number[]> = { codec: [], raw: [], web: [] }
  const orders: ('codec' | 'raw' | 'web')[][] = [['codec', 'raw', 'web'], ['raw', 'web', 'codec'], ['web', 'codec', 'raw']]
  for (let r = 0; r < rounds; r++) {
    for (const which of orders[r % 3]!) {
      const t0 = performance.now()
      if (which === 'codec') for (let i = 0; i < perRound; i++) await signAssertion('serial', headers(), undefined, signer)
      else if (which === 'web') for (let i = 0; i < perRound; i++) await signAssertion('serial', headers(), undefined, webSigner)
      else for (let i = 0; i < perRound; i++) rawSign('sha512', rawData, keyObject)
      times[which].push((performance.now() - t0) / perRound)
    }
  }
  const codecMs = median(times.codec)
  const rawMs = median(times.raw)
  const webMs = median(times.web)
  const codecRatio = median(times.codec.map((c, i) => c / times.raw[i]!))
  const webRatio = median(times.web.map((w, i) => w / times.raw[i]!))

  // verify
  const serials: Assertion[] = []
  for (let i = 0; i < 20; i++) serials.push(await signAssertion('serial', headers(), undefined, signer))
  const rawSig = rawSign('sha512', rawData, keyObject)
  const brandKey = PublicKey.fromPem(brandPem)
  const vCodec: number[] = []
  const vRaw: number[] = []
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now()
    for (let i = 0; i < 200; i++) {
      const s = serials[i % serials.length]!
      await verifySignature(s.content, s.signature, brandKey)
    }
    vCodec.push((performance.now() - t0) / 200)
    t0 = performance.now()
    for (let i = 0; i < 200; i++) rawVerify('sha512', rawData, pubObject, rawSig)
    vRaw.push((performance.now() - t0) / 200)
  }
  const verifyMs = median(vCodec)
  const rawVerifyMs = median(vRaw)
  const portable = async <T>(fn: () => Promise<T> | T): Promise<T> => {
    const prev = setCryptoPlatform(webCryptoPlatform)
    try {
      return await fn()
    } finally {
      setCryptoPlatform(prev)
    }
  }
  const vPortable: number[] = []
  await portable(async () => {
    for (let r = 0; r < Math.min(rounds, 10); r++) {
      const t0 = performance.now()
      for (let i = 0; i < 200; i++) {
        const s = serials[i % serials.length]!
        await verifySignature(s.content, s.signature, brandKey)
      }
      vPortable.push((performance.now() - t0) / 200)
    }
  })
  const verifyPortableMs = median(vPortable)

  // decode a 10,000-assertion stream of distinct serials, each with its own
  // 4096-bit device key (random odd moduli: decoding does not check that a
  // device key is a real RSA key, and a repeated key would hit the codec's
  // decoded-key cache). The serials are laid out with the encoder and carry
  // one real signature: decoding does not verify signatures.
  const sig = serials[0]!.signature
  const parts: Uint8Array[] = []
  for (let i = 0; i < 10_000; i++) {
    const n = randomBytes(512)
    n[0]! |= 0x80
    n[511]! |= 1
    const dk = PublicKey.fromRsa({ n, e: Buffer.from([1, 0, 1]) })
    const { content } = formatContent(
      ASSERTION_TYPES.serial!,
      { 'authority-id': 'acme-brand', revision: '1', 'brand-id': 'acme-brand', model: 'acme-pi-gateway', serial: `D${i}`, 'device-key': dk.encode(), 'device-key-sha3-384': dk.id, timestamp: '2025-01-01T00:00:00Z' },
      Buffer.alloc(0),
      brandKey.id,
    )
    parts.push(content, Buffer.from('\n\n'), sig, Buffer.from('\n'))
  }
  const stream = Buffer.concat(parts)
  const dTimes: number[] = []
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    const got = decodeStream(stream)
    dTimes.push(performance.now() - t0)
    if (got.length !== 10_000) throw new Error('decode lost assertions')
  }
  const decodeMs = median(dTimes)
  const decodePortableMs = await portable(() => {
    const t0 = performance.now()
    if (decodeStream(stream).length !== 10_000) throw new Error('decode lost assertions')
    return performance.now() - t0
  })

  return report('codec', [
    { metric: 'sign serial, codec (RSA-4096 SHA-512, NodeKeySigner)', value: 1000 / codecMs, unit: 'signs/s' },
    { metric: 'sign, raw crypto.sign same key', value: 1000 / rawMs, unit: 'signs/s' },
    { metric: 'codec sign overhead vs raw, median of round ratios (goal <= 5%)', value: (codecRatio - 1) * 100, unit: '%', goal: { max: 5 } },
    { metric: 'sign serial, codec with WebCryptoSigner (node webcrypto)', value: 1000 / webMs, unit: 'signs/s' },
    { metric: 'WebCryptoSigner overhead vs raw (information)', value: (webRatio - 1) * 100, unit: '%' },
    { metric: 'verify serial, codec', value: 1000 / verifyMs, unit: 'verifies/s' },
    { metric: 'verify, raw crypto.verify', value: 1000 / rawVerifyMs, unit: 'verifies/s' },
    { metric: 'codec verify / raw verify throughput', value: rawVerifyMs / verifyMs, unit: 'ratio' },
    { metric: 'verify serial, portable platform (WebCrypto; information)', value: 1000 / verifyPortableMs, unit: 'verifies/s' },
    { metric: 'decode 10,000-assertion stream', value: 10_000 / (decodeMs / 1000), unit: 'assertions/s' },
    { metric: 'decode 10,000-assertion stream', value: stream.length / 1e6 / (decodeMs / 1000), unit: 'MB/s' },
    { metric: 'decode 10,000-assertion stream, portable platform (@noble SHA3 key ids; information)', value: 10_000 / (decodePortableMs / 1000), unit: 'assertions/s' },
  ], { rounds, perRound, streamBytes: stream.length })
}
