/** `account` (spec §4.1). Must be signed by a directly trusted authority. */
import { Assertion, type AssertionParts, type AssertionTypeInfo } from '../assertion.js'
import { checkNotEmptyString, checkOptionalString, checkRfc3339Date } from '../checks.js'

export class AccountAssertion extends Assertion {
  readonly validation: string
  readonly timestamp: number

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    const h = parts.headers
    checkNotEmptyString(h, 'display-name')
    const validation = checkNotEmptyString(h, 'validation')
    // snapd reads the legacy value "certified" as "verified"
    this.validation = validation === 'certified' ? 'verified' : validation
    this.timestamp = checkRfc3339Date(h, 'timestamp')
    checkOptionalString(h, 'username')
  }

  get accountId(): string {
    return this.headerString('account-id')
  }
  get displayName(): string {
    return this.headerString('display-name')
  }
  get username(): string {
    return this.headerString('username')
  }
}
