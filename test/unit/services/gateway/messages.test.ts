import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MAX_JSON_DEPTH } from "../../../../lib/bounded.ts";
import { ErrorTypes, Errors } from "../../../../lib/errors.ts";
import type { TerminalReply } from "../../../../lib/contracts.ts";
import {
	checkDepth,
	outputBytes,
	parseMessage,
	refuseOversize,
	scanTooDeep,
	socketError
} from "../../../../services/gateway/messages.ts";

const nest = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);

function nested(depth: number): unknown {
	let value: unknown = 1;
	for (let i = 0; i < depth; i++) value = { a: value };
	return value;
}

describe("gateway messages: bounds before anything walks a message", () => {
	it("parses a message within the depth limit, and refuses one past it naming the field and its type", () => {
		const fits = parseMessage(`{"type":"result","output":${nest(MAX_JSON_DEPTH - 1)}}`);
		assert.equal(fits.ok, true);

		const deep = parseMessage(`{"type":"result","taskId":"t","output":${nest(10_000)},"after":1}`);
		assert.ok(!deep.ok);
		assert.equal(deep.event, "result");
		assert.equal((deep.error as { type?: string }).type, ErrorTypes.VALIDATION);
		assert.match(deep.error.message, /'output' nests deeper than 64 levels/);
	});

	it("reads the field and type of a too-deep text past strings that look like structure", () => {
		const text = `{"log":"{[{[\\"","type":"pro\\"gress","output":[${nest(100)}]}`;
		assert.deepEqual(scanTooDeep(text, MAX_JSON_DEPTH), { field: "output", type: 'pro"gress' });
		assert.deepEqual(scanTooDeep("[".repeat(100) + "]".repeat(100), MAX_JSON_DEPTH), { field: "" });
		// The type may come after the deep field.
		assert.deepEqual(scanTooDeep(`{"payload":${nest(70)},"type":"ack"}`, MAX_JSON_DEPTH), {
			field: "payload",
			type: "ack"
		});
	});

	it("answers text that is not JSON or has no type with BAD_REQUEST", () => {
		for (const text of ["not json {", "[1,2]", '{"taskId":"t"}', "null"]) {
			const parsed = parseMessage(text);
			assert.ok(!parsed.ok, text);
			assert.equal((parsed.error as { type?: string }).type, ErrorTypes.BAD_REQUEST, text);
		}
	});

	it("refuses socket.io arguments nested past the limit, naming the outermost field", () => {
		assert.doesNotThrow(() => checkDepth([{ taskId: "t", output: nested(MAX_JSON_DEPTH - 1) }]));
		assert.throws(
			() => checkDepth([{ taskId: "t", output: nested(10_000) }]),
			(err: { type?: string; message: string }) => err.type === ErrorTypes.VALIDATION && /'output'/.test(err.message)
		);
	});

	it("turns a result over the limit into a failed one without its output, and leaves the others", () => {
		const result = {
			kind: "result",
			terminalId: "t1",
			taskId: "a",
			attempt: 2,
			status: "success",
			output: "x".repeat(100),
			exitCode: 0
		} as TerminalReply;
		assert.equal(outputBytes(result.kind === "result" ? result.output : undefined), 102);
		assert.equal(refuseOversize(result, 102), null);
		assert.equal(refuseOversize({ kind: "ack", terminalId: "t1", taskId: "a", attempt: 2 }, 0), null);
		const refused = refuseOversize(result, 101);
		assert.ok(refused);
		assert.equal((refused.error as { type?: string }).type, ErrorTypes.RESULT_TOO_LARGE);
		assert.deepEqual(refused.failed, {
			kind: "result",
			terminalId: "t1",
			taskId: "a",
			attempt: 2,
			status: "failed",
			error: `RESULT_TOO_LARGE: ${refused.error.message}`,
			exitCode: 0
		});
	});

	it("tells a caller a validation error's field, message and type only", () => {
		const err = Errors.validation("Parameters validation error!", [
			{
				type: "required",
				field: "attempt",
				message: "The 'attempt' field is required.",
				nodeID: "n1",
				action: "dispatcher.ack"
			},
			{ type: "enumValue", field: "status", message: "…", actual: nested(3), expected: "success, failed", nodeID: "n1" }
		]);
		const payload = socketError(err, "ack");
		assert.equal(payload.event, "ack");
		assert.match(payload.message, /'status' field value '\[object Object\]' is not one of the allowed values/);
		assert.deepEqual(payload.data, [
			{ field: "attempt", message: "The 'attempt' field is required.", type: "required" },
			{ field: "status", message: "…", type: "enumValue" }
		]);
		// Other errors keep their data.
		assert.deepEqual(socketError(Errors.taskNotFound("x")).data, { taskId: "x" });
	});
});
