import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import Moleculer, { type Context, type ServiceBroker } from "moleculer";
import type { RepliesParams, ReplyAnswer, SocketErrorPayload, TerminalReply } from "../../../../lib/contracts.ts";
import { ackParams, resultParams } from "../../../../services/dispatcher/params.ts";
import { ReplyBatcher } from "../../../../services/gateway/replies.ts";
import { ReplyRouter } from "../../../../services/gateway/routing.ts";
import { TerminalSession } from "../../../../services/gateway/sessions.ts";

class QuietSession extends TerminalSession {
	readonly transport = "websocket" as const;
	send(): void {}
	close(): void {}
}

const ack = (terminalId: string, taskId: string, attempt: unknown = 1) =>
	({ kind: "ack", terminalId, taskId, attempt }) as TerminalReply;
const okAnswer = (reply: TerminalReply): ReplyAnswer => ({ ok: { taskId: reply.taskId, attempt: reply.attempt } });
const nextTurn = () => new Promise(resolve => setImmediate(resolve));

describe("gateway: terminals' acks and results in batches", () => {
	it("sends what one turn brings in one call, a full batch at once, and answers each reply with its own answer", async () => {
		const calls: string[][] = [];
		const batcher = new ReplyBatcher(async replies => {
			calls.push(replies.map(r => r.taskId));
			return replies.map(okAnswer);
		}, 3);
		const first = [batcher.add(ack("t1", "a")), batcher.add(ack("t2", "b"))];
		assert.equal(first[0].open(), true, "not sent before the turn ends");
		assert.deepEqual(calls, []);
		first.push(batcher.add(ack("t3", "c")));
		assert.deepEqual(calls, [["a", "b", "c"]], "a full batch goes at once");
		assert.equal(first[0].open(), false);
		const late = batcher.add(ack("t1", "d"));
		await nextTurn();
		assert.deepEqual(calls, [["a", "b", "c"], ["d"]]);
		const answers = await Promise.all([...first, late].map(b => b.answer));
		assert.deepEqual(
			answers.map(a => ("ok" in a ? a.ok.taskId : null)),
			["a", "b", "c", "d"]
		);
	});

	it("answers every reply of a batch whose call failed with the error, and never rejects", async () => {
		const batcher = new ReplyBatcher(async () => Promise.reject(new Error("transporter gone")));
		const answer = await batcher.add(ack("t1", "a")).answer;
		assert.ok("error" in answer);
		assert.match(answer.error.message, /transporter gone/);
	});

	it("puts a session's result in its ack's batch while that is unsent, else sends it after the ack's answer", async () => {
		const sent: string[][] = [];
		let release!: () => void;
		const held = new Promise<void>(resolve => (release = resolve));
		const batcher = new ReplyBatcher(async replies => {
			sent.push(replies.map(r => `${r.kind}:${r.taskId}`));
			if (sent.length === 2) await held;
			return replies.map(okAnswer);
		});
		const session = new QuietSession({ terminalId: "t1", concurrency: 1, labels: {} });
		const result = { kind: "result", terminalId: "t1", taskId: "a", attempt: 1, status: "success" } as TerminalReply;
		await Promise.all([session.inBatch(() => batcher.add(ack("t1", "a"))), session.inBatch(() => batcher.add(result))]);
		assert.deepEqual(sent, [["ack:a", "result:a"]], "one batch, in order");

		// The ack's batch is on its way (and held there): the result waits for its answer.
		const ackAnswer = session.inBatch(() => batcher.add(ack("t1", "b")));
		while (sent.length < 2) await nextTurn();
		const resultAnswer = session.inBatch(() => batcher.add({ ...result, taskId: "b" }));
		await nextTurn();
		await nextTurn();
		assert.deepEqual(sent, [["ack:a", "result:a"], ["ack:b"]], "the result is not sent while its ack is unanswered");
		release();
		await Promise.all([ackAnswer, resultAnswer]);
		assert.deepEqual(sent, [["ack:a", "result:a"], ["ack:b"], ["result:b"]]);
	});

	describe("sendReplies", () => {
		let broker: ServiceBroker;
		const handled: string[][] = [];
		const sendReplies = (broker: ServiceBroker, replies: TerminalReply[]) => new ReplyRouter(broker).send(replies);

		before(async () => {
			broker = new Moleculer.ServiceBroker({ logger: false, validator: true });
			broker.createService({
				name: "dispatcher",
				actions: {
					replies: {
						params: {
							replies: {
								type: "array",
								items: {
									type: "multi",
									rules: [
										{ type: "object", props: { kind: { type: "equal", value: "ack" }, ...ackParams } },
										{ type: "object", props: { kind: { type: "equal", value: "result" }, ...resultParams } }
									]
								}
							}
						},
						handler(ctx: Context<RepliesParams>) {
							handled.push(ctx.params.replies.map(r => r.taskId));
							return ctx.params.replies.map(okAnswer);
						}
					}
				}
			});
			await broker.start();
		});
		after(() => broker.stop());

		it("answers a malformed reply with its validation error, about it alone, and the others of its batch as usual", async () => {
			const replies = [ack("t1", "a"), ack("t2", "b", "first"), ack("t3", "c")];
			const answers = await sendReplies(broker, replies);
			assert.ok("ok" in answers[0] && "ok" in answers[2], JSON.stringify(answers));
			const error = (answers[1] as { error: SocketErrorPayload }).error;
			assert.equal(error.type, "VALIDATION_ERROR");
			assert.match(error.message, /'attempt'/);
			assert.doesNotMatch(error.message, /replies\[/);
			assert.deepEqual(handled, [["a"], ["c"]], "refused as a batch, then sent one by one");
		});

		it("answers each reply with the error when no dispatcher takes them", async () => {
			const alone = new Moleculer.ServiceBroker({ logger: false });
			await alone.start();
			try {
				const answers = await sendReplies(alone, [ack("t1", "a"), ack("t2", "b")]);
				for (const answer of answers) {
					assert.ok("error" in answer);
					assert.equal(answer.error.code, 503, "transient: the terminal may send it again");
				}
			} finally {
				await alone.stop();
			}
		});
	});
});
