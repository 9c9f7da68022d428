import { describe, it } from "node:test";
import assert from "node:assert/strict";
import Moleculer from "moleculer";
import { Errors, toErrorPayload } from "../../../lib/errors.ts";

describe("error payloads", () => {
	it("keep name, message, code, type and data", () => {
		const payload = toErrorPayload(Errors.taskNotFound("t-1"), "ack");
		assert.deepEqual(payload, {
			name: "MoleculerClientError",
			message: "Task 't-1' not found",
			code: 404,
			type: "TASK_NOT_FOUND",
			data: { taskId: "t-1" },
			event: "ack"
		});
	});

	it("name each field of a validation error instead of the generic sentence", () => {
		const err = new Moleculer.Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{ type: "numberMax", field: "priority", message: "The 'priority' field must be less than or equal to 9." },
			{ type: "objectStrict", field: "", actual: "priorty", expected: "type, priority", message: "forbidden keys" }
		]);
		const payload = toErrorPayload(err);
		assert.equal(payload.code, 422);
		assert.match(payload.message, /'priority' field must be less than or equal to 9/);
		assert.match(payload.message, /Unknown field\(s\) 'priorty'; allowed: type, priority/);
	});

	it("answer 503, not 404, when no node offers a service right now (transient in a cluster)", () => {
		const unavailable = toErrorPayload(new Moleculer.Errors.ServiceNotAvailableError({ action: "dispatcher.submit" }));
		assert.equal(unavailable.code, 503);
		assert.equal(unavailable.type, "SERVICE_NOT_AVAILABLE");
		const notFound = toErrorPayload(new Moleculer.Errors.ServiceNotFoundError({ action: "terminals.resolve" }));
		assert.equal(notFound.code, 503);
		assert.equal(notFound.type, "SERVICE_NOT_FOUND");
	});

	it("turn anything else into a 500 INTERNAL_ERROR", () => {
		const payload = toErrorPayload(new Error("disk on fire"));
		assert.equal(payload.code, 500);
		assert.equal(payload.type, "INTERNAL_ERROR");
	});

	it("send no node or action in a validation error's data, and no refused structure", () => {
		let deep: Record<string, unknown> = {};
		for (let i = 0; i < 10_000; i++) deep = { a: deep };
		const err = new Moleculer.Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{
				type: "string",
				field: "username",
				actual: deep,
				message: "The 'username' field must be a string.",
				nodeID: "n-1",
				action: "auth.login"
			},
			{
				type: "numberMax",
				field: "priority",
				actual: 10,
				expected: 9,
				message: "The 'priority' field must be less than or equal to 9.",
				nodeID: "n-1",
				action: "dispatcher.submit"
			}
		]);
		const payload = toErrorPayload(err);
		assert.deepEqual(payload.data, [
			{ type: "string", field: "username", message: "The 'username' field must be a string." },
			{
				type: "numberMax",
				field: "priority",
				actual: 10,
				expected: 9,
				message: "The 'priority' field must be less than or equal to 9."
			}
		]);
		assert.doesNotThrow(() => JSON.stringify(payload), "encodable whatever was given");
	});

	it("bound any error data in depth and clip long strings", () => {
		let deep: Record<string, unknown> = { leaf: true };
		for (let i = 0; i < 10_000; i++) deep = { a: deep };
		const payload = toErrorPayload(
			new Moleculer.Errors.MoleculerClientError("x", 400, "BAD_REQUEST", { deep, long: "y".repeat(10_000) })
		);
		const text = JSON.stringify(payload);
		assert.ok(text.length < 1000, text.slice(0, 200));
		assert.ok((payload.data as { long: string }).long.length <= 121);
		const odd = toErrorPayload(new Moleculer.Errors.MoleculerClientError("x", 400, "BAD_REQUEST", { big: 10n, fn: () => 1 }));
		assert.equal(JSON.stringify(odd.data), '{"big":"10"}');
	});

	it("name no action in the message of a service that is not available", () => {
		const payload = toErrorPayload(
			new Moleculer.Errors.ServiceNotAvailableError({ action: "dispatcher.submit", nodeID: "n-2" })
		);
		assert.doesNotMatch(payload.message, /dispatcher/);
		assert.doesNotMatch(JSON.stringify(payload.data ?? {}), /dispatcher|n-2/);
	});

	it("cut a long list of unknown fields short", () => {
		const keys = Array.from({ length: 500 }, (_, i) => `k${i}`).join(", ");
		const err = new Moleculer.Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{ type: "objectStrict", field: "", actual: keys, expected: "type", message: "forbidden keys" }
		]);
		assert.match(toErrorPayload(err).message, /^Unknown field\(s\) 'k0', .*'k9' and 490 more; allowed: type$/);
	});

	it("name the field nested too deep and the key aimed at a prototype", () => {
		assert.deepEqual(
			{ ...toErrorPayload(Errors.tooDeep("selector.labels", 64)), name: undefined },
			{
				name: undefined,
				message: "'selector.labels' nests deeper than 64 levels",
				code: 422,
				type: "VALIDATION_ERROR",
				data: [{ type: "depth", field: "selector.labels", message: "'selector.labels' nests deeper than 64 levels" }]
			}
		);
		assert.equal(toErrorPayload(Errors.prototypeKey("__proto__")).code, 422);
		assert.equal(toErrorPayload(Errors.bodyTooLarge(1024 * 1024)).message, "The request body is larger than 1 MiB");
		assert.equal(toErrorPayload(Errors.badEncoding("path", "%E0%A4%A")).type, "BAD_REQUEST");
	});
});
