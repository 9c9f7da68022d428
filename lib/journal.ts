/**
 * An append-only journal on local disk. Records (JSON values) go into numbered segment files;
 * each record is framed by its length and a CRC-32 of its bytes, so a torn tail (a crash in the
 * middle of a write) or an altered record is found on reading and everything from it on is
 * left out. `write` resolves only once its record is on disk (fsync): the records of one
 * event-loop turn share one write and one fsync. A segment past `segmentBytes` is closed and
 * the next one started; a segment that has been dealt with is removed.
 */
import { mkdir, open, readdir, readFile, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { TurnBatcher } from "./batcher.ts";

const HEADER_BYTES = 8;
const SEGMENT = /^segment-(\d{10})\.log$/;

export interface JournalOptions {
	/** A segment is closed once it reaches this size. @defaultValue 16 MiB */
	segmentBytes?: number;
}

interface Pending {
	bytes: Buffer;
	resolve(): void;
	reject(err: Error): void;
}

/** What reading a segment found: its records in order, and whether its end was cut short or altered. */
export interface SegmentRead<T> {
	records: T[];
	/** Bytes after the last good record (a torn write or a bad checksum); 0 for a clean segment. */
	discardedBytes: number;
}

export function frame(record: unknown): Buffer {
	const body = Buffer.from(JSON.stringify(record), "utf8");
	const header = Buffer.allocUnsafe(HEADER_BYTES);
	header.writeUInt32LE(body.length, 0);
	header.writeUInt32LE(crc32(body), 4);
	return Buffer.concat([header, body]);
}

/** The records of a segment's bytes, up to the first that is incomplete or does not match its checksum. */
export function unframe<T>(data: Buffer): SegmentRead<T> {
	const records: T[] = [];
	let at = 0;
	while (at + HEADER_BYTES <= data.length) {
		const length = data.readUInt32LE(at);
		const sum = data.readUInt32LE(at + 4);
		const end = at + HEADER_BYTES + length;
		if (end > data.length) break;
		const body = data.subarray(at + HEADER_BYTES, end);
		if (crc32(body) !== sum) break;
		try {
			records.push(JSON.parse(body.toString("utf8")) as T);
		} catch {
			break;
		}
		at = end;
	}
	return { records, discardedBytes: data.length - at };
}

export class Journal<T> {
	readonly dir: string;
	private readonly segmentBytes: number;
	private readonly batcher: TurnBatcher<Pending>;
	private file: FileHandle | null = null;
	private current = 0;
	private currentBytes = 0;
	/** Records written since the journal opened (or was last emptied). */
	private written = 0;

	private constructor(dir: string, options: JournalOptions) {
		this.dir = dir;
		this.segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
		this.batcher = new TurnBatcher<Pending>({ serial: true, maxItems: 5000, flush: batch => this.append(batch) });
	}

	/** Opens (creating) the journal in `dir`; writes go to a new segment after the ones already there. */
	static async open<T>(dir: string, options: JournalOptions = {}): Promise<Journal<T>> {
		await mkdir(dir, { recursive: true, mode: 0o700 });
		const journal = new Journal<T>(dir, options);
		const existing = await journal.segments();
		journal.current = (existing.at(-1) ?? 0) + 1;
		return journal;
	}

	/** Resolves once the record is on disk. */
	write(record: T): Promise<void> {
		const bytes = frame(record);
		return new Promise((resolve, reject) => this.batcher.add({ bytes, resolve, reject }));
	}

	/** Segment numbers on disk, oldest first (the one being written included). */
	async segments(): Promise<number[]> {
		const names = await readdir(this.dir);
		return names
			.map(name => SEGMENT.exec(name))
			.filter((m): m is RegExpExecArray => m !== null)
			.map(m => Number(m[1]))
			.sort((a, b) => a - b);
	}

	/** The segment being written (it may not exist yet). */
	get active(): number {
		return this.current;
	}

	/** True while records wait to be written or a write runs. */
	get busy(): boolean {
		return this.batcher.busy;
	}

	get records(): number {
		return this.written;
	}

	/** Closes the segment being written: what is written next starts a new one. Resolves after pending writes. */
	async rotate(): Promise<number> {
		await this.batcher.drained();
		// The next segment is the one written from this turn on: a write made while the file closes
		// must not reopen the closed segment, which a replay may be reading and about to remove.
		const closed = this.current++;
		await this.closeFile();
		return closed;
	}

	async read(segment: number): Promise<SegmentRead<T>> {
		return unframe<T>(await readFile(this.path(segment)));
	}

	async remove(segment: number): Promise<void> {
		await unlink(this.path(segment)).catch((err: NodeJS.ErrnoException) => {
			if (err.code !== "ENOENT") throw err;
		});
	}

	/** Waits for the writes under way and closes the file. */
	async close(): Promise<void> {
		await this.batcher.drained();
		await this.closeFile();
	}

	private path(segment: number): string {
		return join(this.dir, `segment-${String(segment).padStart(10, "0")}.log`);
	}

	private async closeFile(): Promise<void> {
		const file = this.file;
		this.file = null;
		this.currentBytes = 0;
		await file?.close();
	}

	private async append(batch: Pending[]): Promise<void> {
		try {
			if (this.file && this.currentBytes >= this.segmentBytes) {
				this.current++;
				await this.closeFile();
			}
			if (!this.file) {
				this.file = await open(this.path(this.current), "a", 0o600);
				this.currentBytes = (await this.file.stat()).size;
			}
			const bytes = Buffer.concat(batch.map(p => p.bytes));
			await this.file.write(bytes);
			await this.file.sync();
			this.currentBytes += bytes.length;
			this.written += batch.length;
			for (const pending of batch) pending.resolve();
		} catch (err) {
			for (const pending of batch) pending.reject(err as Error);
		}
	}
}
