/**
 * The terminals' acks and results, batched: what arrives in one event-loop turn goes to the
 * dispatcher as one call (per owning dispatcher node, see routing.ts) rather than one call
 * each. The batcher only collects and hands out answers; the sending is the router's.
 */
import { TurnBatcher } from "../../lib/batcher.ts";
import type { ReplyAnswer, SocketErrorPayload, TerminalReply } from "../../lib/contracts.ts";

/** A reply in a batch. */
export interface Batched {
	/** True while its batch is not yet sent: a later reply of the same session may still join it, behind this one. */
	open(): boolean;
	/** Never rejects: a failure is an `{ error }` answer. */
	answer: Promise<ReplyAnswer>;
}

export type SendReplies = (replies: TerminalReply[]) => Promise<ReplyAnswer[]>;

interface Entry {
	reply: TerminalReply;
	resolve: (answer: ReplyAnswer) => void;
}

const NO_ANSWER: SocketErrorPayload = {
	name: "MoleculerError",
	message: "The dispatcher gave no answer to this reply",
	code: 500,
	type: "INTERNAL_ERROR"
};

export class ReplyBatcher {
	/** Counts the batches sent: a reply's batch is open while this has not moved on. */
	private generation = 0;
	private readonly send: SendReplies;
	private readonly batcher: TurnBatcher<Entry>;

	/** `limit`: a batch this big goes at once rather than at the end of the turn. */
	constructor(send: SendReplies, limit = 500) {
		this.send = send;
		this.batcher = new TurnBatcher<Entry>({ maxItems: limit, flush: entries => this.sendBatch(entries) });
	}

	add(reply: TerminalReply): Batched {
		const generation = this.generation;
		let entry!: Entry;
		const answer = new Promise<ReplyAnswer>(resolve => (entry = { reply, resolve }));
		this.batcher.add(entry);
		return { open: () => this.generation === generation, answer };
	}

	/** Sends what was collected. */
	flush(): void {
		this.batcher.flushNow();
	}

	private sendBatch(entries: Entry[]): void {
		this.generation++;
		this.send(entries.map(e => e.reply)).then(
			answers => {
				for (let i = 0; i < entries.length; i++) entries[i].resolve(answers[i] ?? { error: NO_ANSWER });
			},
			(err: unknown) => {
				const error = { ...NO_ANSWER, message: (err as Error)?.message ?? NO_ANSWER.message };
				for (const entry of entries) entry.resolve({ error });
			}
		);
	}
}
