/**
 * Prometheus metrics, one registry per vault process (tests make their own).
 * Served at GET /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { OutcomeEvent } from './services/registration/registration-service.js'

export interface VaultMetrics {
  registry: Registry
  httpRequests: Counter<'route' | 'method' | 'status'>
  httpDuration: Histogram<'route'>
  serialOutcomes: Counter<'outcome' | 'code' | 'transport' | 'brand' | 'model'>
  signingDuration: Histogram
  registrationDuration: Histogram<'transport'>
  requestIdsIssued: Counter<'transport'>
  requestIdsOutstanding: Gauge
  inflight: Gauge
  signerQueue: Gauge
  mqttMessages: Counter<'op' | 'result'>
  recordOutcome(e: OutcomeEvent): void
}

export function createMetrics(sources: { outstandingRequestIds: () => number; signerQueueDepth: () => number; inflight: () => number; liveStreams?: () => number; liveBufferedBytes?: () => number; liveMaxBufferedBytes?: () => number }, defaults = true): VaultMetrics {
  const registry = new Registry()
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'sv_' })
  const httpRequests = new Counter({ name: 'sv_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] as const, registers: [registry] })
  const httpDuration = new Histogram({
    name: 'sv_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  // brand and model are bounded: models are made by admins; a refusal before the model is known has ''
  const serialOutcomes = new Counter({ name: 'sv_serial_outcomes_total', help: 'serial requests by outcome, SV_* code, transport, brand and model', labelNames: ['outcome', 'code', 'transport', 'brand', 'model'] as const, registers: [registry] })
  const signingDuration = new Histogram({ name: 'sv_signing_duration_seconds', help: 'time to sign one serial assertion (queue + RSA)', buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] })
  const registrationDuration = new Histogram({
    name: 'sv_registration_duration_seconds',
    help: 'time to answer a serial request, any outcome',
    labelNames: ['transport'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  const requestIdsIssued = new Counter({ name: 'sv_request_ids_issued_total', help: 'request-ids issued, by transport', labelNames: ['transport'] as const, registers: [registry] })
  const requestIdsOutstanding = new Gauge({ name: 'sv_request_ids_outstanding', help: 'request-ids issued by this process, not yet used or expired (the nonce pool)', registers: [registry], collect() { this.set(sources.outstandingRequestIds()) } })
  const inflight = new Gauge({ name: 'sv_serial_inflight', help: 'serial requests being processed', registers: [registry], collect() { this.set(sources.inflight()) } })
  const signerQueue = new Gauge({ name: 'sv_signer_queue_depth', help: 'signatures waiting for a signing worker', registers: [registry], collect() { this.set(sources.signerQueueDepth()) } })
  new Gauge({ name: 'sv_live_streams', help: 'open Live page streams (/v1/admin/live)', registers: [registry], collect() { this.set(sources.liveStreams?.() ?? 0) } })
  new Gauge({ name: 'sv_live_buffered_bytes', help: "bytes waiting in the Live streams' socket buffers (bounded per stream)", registers: [registry], collect() { this.set(sources.liveBufferedBytes?.() ?? 0) } })
  new Gauge({ name: 'sv_live_stream_buffered_bytes_max', help: "the most bytes waiting in one Live stream's socket buffer (a stream that stopped reading stays at its bound)", registers: [registry], collect() { this.set(sources.liveMaxBufferedBytes?.() ?? 0) } })
  const mqttMessages = new Counter({ name: 'sv_mqtt_messages_total', help: 'MQTT requests by operation and result (accepted, rejected, dropped)', labelNames: ['op', 'result'] as const, registers: [registry] })
  return {
    registry,
    mqttMessages,
    httpRequests,
    httpDuration,
    serialOutcomes,
    signingDuration,
    registrationDuration,
    requestIdsIssued,
    requestIdsOutstanding,
    inflight,
    signerQueue,
    recordOutcome(e) {
      serialOutcomes.inc({ outcome: e.outcome, code: e.code ?? 'none', transport: e.transport, brand: e.brandId ?? '', model: e.model ?? '' })
      registrationDuration.observe({ transport: e.transport }, e.durationMs / 1000)
      if (e.signingMs !== undefined) signingDuration.observe(e.signingMs / 1000)
    },
  }
}
