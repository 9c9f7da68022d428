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
});
