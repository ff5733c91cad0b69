import { VaultError } from '@sv/shared'
import type { AuditSeal, GrantRecord, PersonRecord, StoreRecord } from '../records.js'
import type { GrantRepository, PeopleRepository } from '../store.js'
import { type LevelContext, defined, del, put, requireStrings } from './context.js'
import { lastComponent, prefixRange, tupleKey } from './layout.js'

export class LevelPeople implements PeopleRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  create(person: PersonRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ id: person.id, email: person.email })
    if (person.email !== person.email.toLowerCase()) throw new TypeError('email must be lowercase')
    return this.#c.locked(
      [tupleKey('person', person.id), tupleKey('email', person.email)],
      async (s) => {
        if ((await s.person.has(person.id)) || (await s.personByEmail.has(person.email))) {
          throw new VaultError('SV_PERSON_EXISTS', 'a person with this e-mail already exists', { details: { email: person.email } })
        }
        await this.#c.commit(s, [put(s.person, person.id, person), put(s.personByEmail, person.email, person.id)], audit)
      },
      audit !== undefined,
    )
  }

  update(person: PersonRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ id: person.id })
    return this.#c.locked(
      [tupleKey('person', person.id)],
      async (s) => {
        const old = (await s.person.get(person.id)) as PersonRecord | undefined
        if (old === undefined) throw new VaultError('SV_PERSON_NOT_FOUND', 'no such person', { details: { personId: person.id } })
        if (old.email !== person.email) throw new TypeError('a person keeps their e-mail')
        await this.#c.commit(s, [put(s.person, person.id, person)], audit)
      },
      audit !== undefined,
    )
  }

  get(id: string): Promise<PersonRecord | undefined> {
    return this.#c.run((s) => s.person.get(id))
  }

  getByEmail(email: string): Promise<PersonRecord | undefined> {
    return this.#c.run(async (s) => {
      const id = (await s.personByEmail.get(email.toLowerCase())) as string | undefined
      return id === undefined ? undefined : s.person.get(id)
    })
  }

  list(): Promise<PersonRecord[]> {
    return this.#c.run(async (s) => {
      const ids = await s.personByEmail.values().all()
      return defined(await s.person.getMany(ids))
    })
  }
}

export class LevelGrants implements GrantRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  put(grant: GrantRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ personId: grant.personId, storeId: grant.storeId })
    return this.#c.locked(
      [tupleKey('grant', grant.personId, grant.storeId), tupleKey('person', grant.personId), tupleKey('store', grant.storeId)],
      async (s) => {
        if (!(await s.person.has(grant.personId))) throw new VaultError('SV_PERSON_NOT_FOUND', 'no such person', { details: { personId: grant.personId } })
        if (((await s.store.get(grant.storeId)) as StoreRecord | undefined) === undefined) throw new VaultError('SV_STORE_NOT_FOUND', 'no such store', { details: { storeId: grant.storeId } })
        await this.#c.commit(s, [put(s.grant, tupleKey(grant.personId, grant.storeId), grant), put(s.grantByStore, tupleKey(grant.storeId, grant.personId), '')], audit)
      },
      audit !== undefined,
    )
  }

  delete(personId: string, storeId: string, audit?: AuditSeal): Promise<GrantRecord | undefined> {
    const k = tupleKey(personId, storeId)
    return this.#c.locked(
      [tupleKey('grant', personId, storeId)],
      async (s) => {
        const old = (await s.grant.get(k)) as GrantRecord | undefined
        if (old === undefined) return undefined
        await this.#c.commit(s, [del(s.grant, k), del(s.grantByStore, tupleKey(storeId, personId))], audit)
        return old
      },
      audit !== undefined,
    )
  }

  listForPerson(personId: string): Promise<GrantRecord[]> {
    return this.#c.run((s) => s.grant.values(prefixRange(personId)).all())
  }

  listForStore(storeId: string): Promise<GrantRecord[]> {
    return this.#c.run(async (s) => {
      const people = (await s.grantByStore.keys(prefixRange(storeId)).all()).map(lastComponent)
      return defined(await s.grant.getMany(people.map((p) => tupleKey(p, storeId))))
    })
  }
}
