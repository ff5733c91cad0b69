/** The agent's version (User-Agent, status) and release date (clock sanity check). */
export const VERSION = '0.1.0'

/**
 * No correct clock reads earlier than the day this agent was released. A
 * device without a battery-backed RTC boots at 1970 or at the image build
 * time until NTP answers; before that, TLS and the serial's key validity
 * checks cannot work, so the agent waits for time synchronisation instead of
 * failing (see clock.ts). Overridable with `clock.notBefore`.
 */
export const RELEASE_DATE = '2026-11-01T00:00:00Z'
