/**
 * CRC-64 with the ISO 3309 polynomial, computed as Go's `hash/crc64` does with
 * `crc64.MakeTable(crc64.ISO)`: reflected, all-ones initial value and final XOR
 * ("CRC-64/GO-ISO" in the CRC catalogue: check value 0xb90956c775a41001 for "123456789").
 * tar-split (github.com/vbatts/tar-split, tar/storage) records it for each file of a Docker
 * layer. An integrity check against accidents, not a cryptographic hash.
 *
 * The 64-bit state is kept as two unsigned 32-bit halves, so no BigInt on the data path.
 */

/** The reflected polynomial 0xD800000000000000: its low half is zero. */
const polynomialHigh = 0xd8000000;

const tableHigh = new Uint32Array(256);
const tableLow = new Uint32Array(256);
for (let byte = 0; byte < 256; byte++) {
  let high = 0;
  let low = byte;
  for (let bit = 0; bit < 8; bit++) {
    const carry = low & 1;
    low = ((low >>> 1) | (high << 31)) >>> 0;
    high >>>= 1;
    if (carry) high = (high ^ polynomialHigh) >>> 0;
  }
  tableHigh[byte] = high;
  tableLow[byte] = low;
}

export class Crc64Iso {
  // The state is kept complemented (Go's crc64.update: crc = ^crc … return ^crc).
  #high = 0xffffffff;
  #low = 0xffffffff;

  update(bytes: Uint8Array): this {
    let high = this.#high;
    let low = this.#low;
    for (let i = 0; i < bytes.length; i++) {
      const index = (low ^ (bytes[i] as number)) & 0xff;
      low = ((low >>> 8) | (high << 24)) ^ (tableLow[index] as number);
      high = (high >>> 8) ^ (tableHigh[index] as number);
    }
    this.#high = high;
    this.#low = low;
    return this;
  }

  /** The checksum, 8 bytes big-endian, as Go's `hash.Hash64.Sum(nil)` gives it. */
  digest(): Buffer {
    const sum = Buffer.alloc(8);
    sum.writeUInt32BE(~this.#high >>> 0, 0);
    sum.writeUInt32BE(~this.#low >>> 0, 4);
    return sum;
  }
}
