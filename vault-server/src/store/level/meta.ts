import type { MetaRepository } from '../store.js'
import { type LevelContext, put, requireStrings } from './context.js'
import { tupleKey } from './layout.js'

export class LevelMeta implements MetaRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  get(name: string): Promise<string | undefined> {
    return this.#c.run((s) => s.meta.get(name))
  }

  put(name: string, value: string, onlyIfAbsent = false): Promise<boolean> {
    requireStrings({ name, value })
    return this.#c.locked([tupleKey('meta', name)], async (s) => {
      if (onlyIfAbsent && (await s.meta.has(name))) return false
      await this.#c.write([put(s.meta, name, value)])
      return true
    })
  }
}
