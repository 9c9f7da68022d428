import { randomFillSync } from "node:crypto";

let lastMs = 0;
let counter = 0;

/** Random bytes drawn 4 KiB at a time: one call into the CSPRNG per 256 ids, not one per id. */
const pool = Buffer.alloc(4096);
let drawn = pool.length;
const bytes = Buffer.alloc(16);

/**
 * A UUIDv7: 48 bits of Unix milliseconds, then a 12-bit counter that keeps ids made in the
 * same millisecond in creation order, then random bits. Sorting task ids therefore sorts
 * tasks by submit order (FIFO within a priority) in this process; across processes ids made
 * in the same millisecond are ordered by their random tail.
 */
export function uuidv7(now = Date.now()): string {
	if (now <= lastMs) {
		counter++;
		if (counter > 0xfff) {
			lastMs++;
			counter = 0;
		}
	} else {
		lastMs = now;
		counter = 0;
	}
	if (drawn === pool.length) {
		randomFillSync(pool);
		drawn = 0;
	}
	pool.copy(bytes, 0, drawn, drawn + 16);
	drawn += 16;
	const ms = lastMs;
	bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
	bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
	bytes[2] = (ms >>> 24) & 0xff;
	bytes[3] = (ms >>> 16) & 0xff;
	bytes[4] = (ms >>> 8) & 0xff;
	bytes[5] = ms & 0xff;
	bytes[6] = 0x70 | ((counter >>> 8) & 0x0f);
	bytes[7] = counter & 0xff;
	bytes[8] = (bytes[8] & 0x3f) | 0x80;
	const hex = bytes.toString("hex");
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
