/**
 * `GET /api/openapi.json` and `GET /api/docs`: the description covers every route the gateway
 * serves, is a valid OpenAPI 3.1 document whose schemas compile, and says the same as the
 * validators do — requests it accepts are accepted, and requests it refuses are refused (422).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import Ajv2020 from "ajv/dist/2020.js";
import { TestTern } from "../helpers/tern.ts";
import { operations, type RouteEntry } from "../../lib/http/openapi.ts";

type Document = {
	openapi: string;
	info: { version: string };
	paths: Record<string, Record<string, Operation>>;
};
type Operation = {
	operationId: string;
	parameters: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[];
	requestBody?: { content: { "application/json": { schema: Record<string, unknown> } } };
	responses: Record<string, unknown>;
	security?: unknown[];
};

describe("OpenAPI description", () => {
	let tern: TestTern;
	let doc: Document;
	const ajv = new Ajv2020.default({ strict: false, allErrors: true });

	before(async () => {
		tern = await TestTern.start();
		const reply = await tern.api<Document>("GET", "/api/openapi.json", undefined, null);
		assert.equal(reply.status, 200);
		doc = reply.body;
	});
	after(() => tern.close());

	function bodySchema(method: string, path: string): Record<string, unknown> {
		const schema = doc.paths[path]?.[method]?.requestBody?.content["application/json"].schema;
		assert.ok(schema, `${method} ${path} has a JSON body`);
		return schema;
	}

	it("lists every alias of every route, with the action that answers it", () => {
		const routes = (tern.broker.getLocalService("api") as unknown as { settings: { routes: RouteEntry[] } }).settings.routes;
		const expected = operations(routes);
		assert.ok(expected.length > 80, `the gateway serves ${expected.length} operations`);
		for (const operation of expected) {
			const found = doc.paths[operation.path]?.[operation.method.toLowerCase()];
			assert.ok(found, `${operation.method} ${operation.path} is described`);
			assert.equal(found.operationId, operation.action);
			for (const name of operation.pathParams)
				assert.ok(
					found.parameters.some(p => p.in === "path" && p.name === name),
					`${operation.path} declares {${name}}`
				);
		}
		assert.equal(doc.openapi, "3.1.0");
		assert.match(doc.info.version, /^\d+\.\d+\.\d+/);
	});

	it("marks what needs a token and what needs a confirmation", () => {
		assert.ok(doc.paths["/api/task/submit"]?.post?.security, "submit needs a token");
		assert.ok(doc.paths["/api/tasks/purge"]?.post?.responses["202"], "purge answers 202 until confirmed");
		assert.ok(doc.paths["/api/tasks/purge"]?.post?.parameters.some(p => p.name === "X-Confirm"));
		assert.equal(doc.paths["/api/auth/login"]?.post?.security, undefined);
		assert.equal(doc.paths["/healthz/live"]?.get?.security, undefined);
	});

	it("compiles every schema it holds", () => {
		let count = 0;
		for (const item of Object.values(doc.paths))
			for (const operation of Object.values(item)) {
				const schemas = operation.parameters.map(parameter => parameter.schema);
				if (operation.requestBody) schemas.push(operation.requestBody.content["application/json"].schema);
				for (const schema of schemas) assert.equal(typeof ajv.compile(schema), "function");
				count += schemas.length;
			}
		assert.ok(count > 100, `${count} schemas compiled`);
	});

	it("accepts what the validators accept and refuses what they refuse", async () => {
		const submit = ajv.compile(bodySchema("post", "/api/task/submit"));
		await tern.registerTerminal("t-1");
		const good = { terminalId: "t-1", type: "shell", payload: { cmd: "echo hi" } };
		assert.ok(submit(good), JSON.stringify(submit.errors));
		assert.equal((await tern.api("POST", "/api/task/submit", good)).status, 201);

		for (const bad of [
			{ ...good, surprise: 1 },
			{ ...good, terminalId: 7 },
			{ ...good, priority: 10 },
			{ terminalId: "t-1" }
		]) {
			assert.equal(submit(bad), false, `the description refuses ${JSON.stringify(bad)}`);
			const reply = await tern.api("POST", "/api/task/submit", bad);
			assert.equal(reply.status, 422, `the API refuses ${JSON.stringify(bad)}`);
			assert.equal(reply.body.type, "VALIDATION_ERROR");
		}

		const login = ajv.compile(bodySchema("post", "/api/auth/login"));
		assert.ok(login({ username: "admin", password: "x" }));
		assert.equal(login({ username: "admin" }), false);

		const pageSize = doc.paths["/api/tasks"]?.get?.parameters.find(p => p.name === "pageSize");
		assert.ok(pageSize, "GET /api/tasks takes ?pageSize");
		const check = ajv.compile(pageSize.schema);
		const max = pageSize.schema.maximum as number;
		assert.ok(check(max) && !check(max + 1), `pageSize stops at ${max}`);
		assert.equal((await tern.api("GET", `/api/tasks?pageSize=${max}`)).status, 200);
		assert.equal((await tern.api("GET", `/api/tasks?pageSize=${max + 1}`)).status, 422);
	});

	it("serves a reference page to read, without scripts, escaping what it shows", async () => {
		const reply = await fetch(`${tern.url}/api/docs`);
		assert.equal(reply.status, 200);
		assert.match(reply.headers.get("content-type") ?? "", /^text\/html/);
		const html = await reply.text();
		assert.match(html, /POST \/api\/task\/submit/);
		assert.match(html, /dispatcher\.submit/);
		assert.match(html, /href="\/api\/openapi\.json"/);
		assert.doesNotMatch(html, /<script/i);
		assert.doesNotMatch(html, /<[^>]*\son\w+=/i, "no inline handlers");
	});
});
