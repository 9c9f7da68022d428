/**
 * Where the terminals' acks and results go: to the dispatcher node that owns their terminal (the
 * one whose queue and deadlines they touch), one `dispatcher.replies` call per node.
 */
import { call } from "../../lib/actions.ts";
import type { ServiceBroker } from "moleculer";
import type { ReplyAnswer, SocketErrorPayload, TerminalReply } from "../../lib/contracts.ts";
import { ErrorTypes, toErrorPayload } from "../../lib/errors.ts";
import { nodesRunning } from "../../lib/membership.ts";
import { OwnerCache } from "../../lib/owners.ts";

/**
 * Which dispatcher node owns each terminal (null: any node will do). The gateway's one question
 * about ownership: the answer's source can change without the routing below changing.
 */
export type OwnerLookup = (terminalIds: readonly string[]) => (string | null)[];

/** Ownership as the dispatchers decide it: rendezvous hashing over the nodes running a dispatcher. */
export function dispatcherOwners(broker: ServiceBroker): OwnerLookup {
	const owners = new OwnerCache();
	return terminalIds => {
		const nodes = nodesRunning(broker, "dispatcher");
		return terminalIds.map(id => owners.owner(id, nodes));
	};
}

/** The fields of each reply kind, as the terminal names them (`kind` is the batch's own). */
const FIELDS: Record<TerminalReply["kind"], ReadonlySet<string>> = {
	ack: new Set(["taskId", "attempt", "terminalId"]),
	result: new Set(["taskId", "attempt", "terminalId", "status", "output", "error", "exitCode"])
};

/**
 * A batch's validation error about its only reply, worded as about that reply alone: `attempt`,
 * not `replies[0].attempt`, and only what the rule of its kind says. The batch's validator tries
 * the ack rule and the result rule both, so it also complains that `kind` is not the other one and
 * asks an ack for a `status`: a terminal never sent `kind` and owes an ack no status.
 */
export function alone(error: SocketErrorPayload, kind: TerminalReply["kind"]): SocketErrorPayload {
	const unprefix = (text: string) => text.replaceAll("replies[0].", "");
	if (!Array.isArray(error.data)) return { ...error, message: unprefix(error.message) };
	const seen = new Set<string>();
	const items: Record<string, unknown>[] = [];
	for (const item of error.data as Record<string, unknown>[]) {
		const field = typeof item.field === "string" ? unprefix(item.field) : "";
		const message = typeof item.message === "string" ? unprefix(item.message) : "";
		if (!FIELDS[kind].has(field.split(/[.[]/)[0]) || seen.has(`${field}\n${message}`)) continue;
		seen.add(`${field}\n${message}`);
		items.push({ ...item, field, message });
	}
	if (items.length === 0) return { ...error, message: unprefix(error.message), data: undefined };
	// Worded again from the items left, as any validation error is.
	return toErrorPayload({ ...error, data: items });
}

const isValidation = (err: unknown) => (err as { type?: unknown } | null)?.type === ErrorTypes.VALIDATION;

export class ReplyRouter {
	private readonly broker: ServiceBroker;
	private readonly owners: OwnerLookup;

	constructor(broker: ServiceBroker, owners: OwnerLookup = dispatcherOwners(broker)) {
		this.broker = broker;
		this.owners = owners;
	}

	/**
	 * One answer per reply, same order; never rejects. A call that fails (owner gone, timeout) is
	 * made once more to any dispatcher; if that fails too, each of its replies is answered with the
	 * error. A batch refused as invalid (one terminal's malformed reply) is sent again one reply at
	 * a time, so that only that one is refused.
	 */
	async send(replies: TerminalReply[]): Promise<ReplyAnswer[]> {
		const owners = this.owners(replies.map(r => r.terminalId));
		const groups = new Map<string | null, number[]>();
		owners.forEach((owner, i) => {
			const group = groups.get(owner);
			if (group) group.push(i);
			else groups.set(owner, [i]);
		});
		const answers = new Array<ReplyAnswer>(replies.length);
		await Promise.all(
			[...groups].map(async ([owner, indexes]) => {
				const got = await this.sendTo(
					indexes.map(i => replies[i]),
					owner
				);
				indexes.forEach((i, k) => (answers[i] = got[k]));
			})
		);
		return answers;
	}

	private call(part: TerminalReply[], nodeID: string | null): Promise<ReplyAnswer[]> {
		return call(this.broker, "dispatcher.replies", { replies: part }, nodeID ? { nodeID } : {});
	}

	private async sendTo(part: TerminalReply[], owner: string | null): Promise<ReplyAnswer[]> {
		let failure: unknown;
		for (const nodeID of owner === null ? [null] : [owner, null]) {
			try {
				return await this.call(part, nodeID);
			} catch (err) {
				failure = err;
				if (isValidation(err)) break;
			}
		}
		if (!isValidation(failure)) {
			const error = toErrorPayload(failure);
			return part.map(() => ({ error }));
		}
		if (part.length === 1) return [{ error: alone(toErrorPayload(failure), part[0].kind) }];
		// One by one, each terminal's in order.
		const answers = new Array<ReplyAnswer>(part.length);
		const chains = new Map<string, Promise<void>>();
		part.forEach((reply, k) => {
			const next = (chains.get(reply.terminalId) ?? Promise.resolve()).then(async () => {
				answers[k] = (await this.sendTo([reply], owner))[0];
			});
			chains.set(reply.terminalId, next);
		});
		await Promise.all(chains.values());
		return answers;
	}
}
