/**
 * Live output of a run, streamed to Tern as progress messages, one line each, in order:
 * `{ taskId, attempt, log, stream }` — several lines of a stream to a message only when the
 * agent has fallen behind. Bounded: past `limit` bytes per run the stream stops with
 * a line saying so, and a backlog that cannot be sent (Tern unreachable) is capped too — the
 * result still carries the last bytes of each stream.
 */
import type { Stream } from "../runners/base.ts";
import { TernError } from "./rest.ts";

export interface LogItem {
	stream?: Stream;
	log?: string;
	percent?: number;
}

/** A partial line is sent after this long without its end, or once it is this long. */
const PARTIAL_FLUSH_MS = 250;
const LONGEST_LINE = 16 * 1024;
/** Lines waiting beyond which they are sent several to a message, up to this many bytes each. */
const COALESCE_BACKLOG = 50;
const COALESCE_BYTES = 16 * 1024;

export class LogPump {
	private readonly queue: LogItem[] = [];
	private readonly partial: Record<Stream, string> = { stdout: "", stderr: "" };
	private bytes = 0;
	private stoppedNoted = false;
	private dropped = 0;
	private closed = false;
	private gaveUp = false;
	private sending: Promise<void> | null = null;
	private partialTimer: NodeJS.Timeout | null = null;
	private readonly send: (item: LogItem) => Promise<unknown>;
	private readonly limit: number;
	private readonly maxQueue: number;
	/** Lines sent (tests and logs). */
	sent = 0;

	constructor(send: (item: LogItem) => Promise<unknown>, limit: number, maxQueue = 5000) {
		this.send = send;
		this.limit = limit;
		this.maxQueue = maxQueue;
	}

	write(stream: Stream, text: string): void {
		if (this.closed || this.gaveUp || text === "") return;
		const lines = (this.partial[stream] + text).split("\n");
		this.partial[stream] = lines.pop()!;
		for (const line of lines) {
			const text = line.endsWith("\r") ? line.slice(0, -1) : line;
			// A very long line goes in pieces: Tern takes at most 64 KiB per message.
			for (let i = 0; i === 0 || i < text.length; i += LONGEST_LINE)
				this.enqueue({ stream, log: text.slice(i, i + LONGEST_LINE) });
		}
		while (this.partial[stream].length >= LONGEST_LINE) {
			this.enqueue({ stream, log: this.partial[stream].slice(0, LONGEST_LINE) });
			this.partial[stream] = this.partial[stream].slice(LONGEST_LINE);
		}
		if (this.partial.stdout || this.partial.stderr) {
			if (!this.partialTimer) {
				this.partialTimer = setTimeout(() => {
					this.partialTimer = null;
					this.flushPartial("stdout");
					this.flushPartial("stderr");
				}, PARTIAL_FLUSH_MS);
				this.partialTimer.unref();
			}
		}
	}

	percent(value: number): void {
		if (this.closed || this.gaveUp) return;
		if (Number.isFinite(value)) this.enqueue({ percent: Math.min(100, Math.max(0, value)) }, true);
	}

	private flushPartial(stream: Stream): void {
		if (!this.partial[stream]) return;
		this.enqueue({ stream, log: this.partial[stream] });
		this.partial[stream] = "";
	}

	private enqueue(item: LogItem, control = false): void {
		if (!control) {
			this.bytes += Buffer.byteLength(item.log ?? "") + 1;
			if (this.bytes > this.limit) {
				if (!this.stoppedNoted) {
					this.stoppedNoted = true;
					this.queue.push({
						stream: "stderr",
						log: `[tern-agent: live output stops here, after ${this.limit} bytes; the result keeps the end]`
					});
				}
				return;
			}
		}
		if (this.queue.length >= this.maxQueue) {
			this.dropped++;
			return;
		}
		if (this.dropped > 0) {
			this.queue.push({
				stream: "stderr",
				log: `[tern-agent: ${this.dropped} line(s) of live output dropped: Tern could not take them in time]`
			});
			this.dropped = 0;
		}
		this.queue.push(item);
		this.sending ??= this.pump().finally(() => (this.sending = null));
	}

	private async pump(): Promise<void> {
		while (this.queue.length > 0 && !this.gaveUp) {
			// Behind by many lines (a chatty task, a slow link): several lines of one stream go in
			// one message, so that the result is not held up by its own output.
			let item = this.queue[0];
			let take = 1;
			if (this.queue.length > COALESCE_BACKLOG && item.log !== undefined) {
				let text = item.log;
				for (; take < this.queue.length; take++) {
					const next = this.queue[take];
					if (next.stream !== item.stream || next.log === undefined || text.length + next.log.length >= COALESCE_BYTES)
						break;
					text += "\n" + next.log;
				}
				item = { stream: item.stream, log: text };
			}
			try {
				await this.send(item);
				const sent = this.queue.splice(0, take);
				this.sent += sent.filter(i => i.log !== undefined).length;
			} catch (err) {
				if (err instanceof TernError && err.definitive) {
					// Tern will not take logs of this attempt (it ended, or is no longer ours).
					this.gaveUp = true;
					this.queue.length = 0;
					return;
				}
				// Not connected: try again shortly, unless the run is over and its wait is up.
				if (this.closed) return;
				await new Promise(resolve => setTimeout(resolve, 500).unref());
			}
		}
	}

	/** The end of the run: the partial lines go, then what is queued, for at most `timeoutMs`. */
	async close(timeoutMs: number): Promise<void> {
		if (this.partialTimer) clearTimeout(this.partialTimer);
		this.partialTimer = null;
		this.flushPartial("stdout");
		this.flushPartial("stderr");
		const deadline = Date.now() + timeoutMs;
		while (this.queue.length > 0 && !this.gaveUp && Date.now() < deadline) {
			this.sending ??= this.pump().finally(() => (this.sending = null));
			let timer: NodeJS.Timeout | undefined;
			await Promise.race([
				this.sending,
				new Promise(resolve => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))
			]);
			clearTimeout(timer);
		}
		this.closed = true;
	}
}
