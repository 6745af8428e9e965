/** A small seeded PRNG (sfc32 seeded by cyrb128) and Stripe-like id generation. */

const cyrb128 = (str: string): [number, number, number, number] => {
  let h1 = 1779033703
  let h2 = 3144134277
  let h3 = 1013904242
  let h4 = 2773480762
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i)
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067)
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233)
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213)
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179)
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067)
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233)
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213)
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179)
  h1 ^= h2 ^ h3 ^ h4
  h2 ^= h1
  h3 ^= h1
  h4 ^= h1
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0]
}

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** Id body lengths by prefix (Stripe's customer/product ids are short, most others long). */
const SHORT = new Set(["cus", "prod", "si", "acct_1", "cn", "li", "cbtxn", "txi", "rv", "issfr"])

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  constructor(seed: string) {
    const [a, b, c, d] = cyrb128(seed)
    this.a = a
    this.b = b
    this.c = c
    this.d = d
    for (let i = 0; i < 12; i++) this.next()
  }
  /** A float in [0, 1). */
  next(): number {
    this.a >>>= 0
    this.b >>>= 0
    this.c >>>= 0
    this.d >>>= 0
    let t = (this.a + this.b) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.d = (this.d + 1) | 0
    t = (t + this.d) | 0
    this.c = (this.c + t) | 0
    return (t >>> 0) / 4294967296
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  pick<A>(xs: ReadonlyArray<A>): A {
    return xs[Math.floor(this.next() * xs.length)]!
  }
  /** A random string over [0-9A-Za-z]. */
  chars(n: number): string {
    let s = ""
    for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(this.next() * 62)]
    return s
  }
  /** A Stripe-like id: `cus_QXg1o8vcGmoR32`, `in_1Pgc6tB7WZ01zgkWu9fdqL6I`. */
  id(prefix: string): string {
    return `${prefix}_${SHORT.has(prefix) ? this.chars(14) : `1${this.chars(23)}`}`
  }
  /** A child generator with an independent stream (for per-account generation). */
  fork(label: string): Rng {
    return new Rng(`${this.chars(16)}:${label}`)
  }
}
