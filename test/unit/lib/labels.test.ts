import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { labelsMatch, normalizeLabels } from "../../../lib/labels.ts";

describe("labels", () => {
	it("normalizes lists to keys and values to strings", () => {
		assert.deepEqual(normalizeLabels(["gpu", "linux"]), { gpu: "true", linux: "true" });
		assert.deepEqual(normalizeLabels({ cores: 8 as unknown as string }), { cores: "8" });
		assert.deepEqual(normalizeLabels(undefined), {});
	});

	it("matches when the terminal carries every selector label", () => {
		const terminal = { region: "eu", gpu: "true" };
		assert.ok(labelsMatch({ region: "eu" }, terminal));
		assert.ok(labelsMatch({}, terminal));
		assert.ok(labelsMatch(undefined, terminal));
		assert.ok(!labelsMatch({ region: "us" }, terminal));
		assert.ok(!labelsMatch({ region: "eu", arch: "arm" }, terminal));
		assert.ok(labelsMatch(["gpu"], terminal), "a list asks for keys only");
		assert.ok(!labelsMatch(["tpu"], terminal));
	});
});
