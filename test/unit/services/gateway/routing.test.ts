import { describe, it } from "node:test";
import assert from "node:assert/strict";
import Moleculer, { type Context } from "moleculer";
import type { RepliesParams, ReplyAnswer, SocketErrorPayload, TerminalReply } from "../../../../lib/contracts.ts";
import { toErrorPayload } from "../../../../lib/errors.ts";
import { ReplyRouter, alone } from "../../../../services/gateway/routing.ts";
import { ackParams, resultParams } from "../../../../services/dispatcher/params.ts";

/** The error the dispatcher's `replies` validator gives a batch of one reply. */
async function batchError(reply: Record<string, unknown>): Promise<SocketErrorPayload> {
	const broker = new Moleculer.ServiceBroker({ logger: false, validator: true });
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
				handler: () => []
			}
		}
	});
	await broker.start();
	try {
		await broker.call("dispatcher.replies", { replies: [reply] });
		assert.fail("the batch was accepted");
	} catch (err) {
		return toErrorPayload(err);
	} finally {
		await broker.stop();
	}
}

describe("gateway routing: replies to their dispatcher", () => {
	it("words a one-reply batch's validation error by the rule of the reply's kind, without `kind` or `replies[0]`", async () => {
		const ack = alone(await batchError({ kind: "ack", terminalId: "t", taskId: "a" }), "ack");
		assert.equal(ack.message, "The 'attempt' field is required.");
		assert.deepEqual(
			(ack.data as { field: string }[]).map(i => i.field),
			["attempt"]
		);

		const result = alone(
			await batchError({ kind: "result", terminalId: "t", taskId: "a", attempt: 1, status: "x" }),
			"result"
		);
		assert.match(result.message, /^The 'status' field value 'x' is not one of the allowed values/);
		assert.deepEqual(
			(result.data as { field: string }[]).map(i => i.field),
			["status"]
		);
	});

	it("asks the owner lookup once per batch and sends each owner its replies in one call", async () => {
		const broker = new Moleculer.ServiceBroker({ logger: false });
		const calls: { nodeID: string | undefined; taskIds: string[] }[] = [];
		broker.createService({
			name: "dispatcher",
			actions: {
				replies(ctx: Context<RepliesParams>): ReplyAnswer[] {
					calls.push({ nodeID: ctx.options.nodeID, taskIds: ctx.params.replies.map(r => r.taskId) });
					return ctx.params.replies.map(r => ({ ok: { taskId: r.taskId } }));
				}
			}
		});
		await broker.start();
		try {
			const asked: string[][] = [];
			const router = new ReplyRouter(broker, ids => {
				asked.push([...ids]);
				return ids.map(() => broker.nodeID);
			});
			const replies: TerminalReply[] = ["a", "b"].map(taskId => ({
				kind: "ack",
				terminalId: `t-${taskId}`,
				taskId,
				attempt: 1
			}));
			const answers = await router.send(replies);
			assert.deepEqual(asked, [["t-a", "t-b"]]);
			assert.deepEqual(calls, [{ nodeID: broker.nodeID, taskIds: ["a", "b"] }]);
			assert.deepEqual(answers, [{ ok: { taskId: "a" } }, { ok: { taskId: "b" } }]);
		} finally {
			await broker.stop();
		}
	});
});
