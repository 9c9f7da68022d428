/**
 * The REST API's OpenAPI 3.1 description, generated from what the gateway really serves: its
 * route table (moleculer-web's aliases) and each action's validator schema as the registry holds
 * it. A path parameter comes from the path, the rest of a GET's or DELETE's params from the query
 * string, the rest of a POST's, PUT's or PATCH's from the JSON body.
 */
import { confirmHeader } from "../confirm.ts";
import { paramsSchema, type JsonSchema } from "./json-schema.ts";

/** One moleculer-web route, as the api service's settings hold it. */
export interface RouteEntry {
	path: string;
	authentication?: boolean;
	aliases: Record<string, unknown>;
}

/** An action the registry knows: its name, its params and a line saying what it does. */
export interface ActionEntry {
	name: string;
	params?: Record<string, unknown>;
	description?: string;
}

/** One operation as the description and the reference page list it. */
export interface Operation {
	method: string;
	path: string;
	action: string;
	/** The path's parameters, in order. */
	pathParams: string[];
	authenticated: boolean;
	confirmed: boolean;
}

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
/** Actions that answer a page of the web console rather than JSON. */
const HTML_ACTIONS = new Set(["api.console", "api.reference"]);
const TEXT_ACTIONS = new Set(["api.metrics"]);

const ERROR_SCHEMA: JsonSchema = {
	type: "object",
	required: ["name", "message", "code", "type"],
	properties: {
		name: { type: "string" },
		message: { type: "string", description: "What went wrong, naming the field at fault." },
		code: { type: "integer", description: "The HTTP status." },
		type: { type: "string", description: "The stable error type, e.g. VALIDATION_ERROR, NOT_FOUND, RATE_LIMITED." },
		data: { description: "Details: for VALIDATION_ERROR, a list of { type, field, message }." }
	}
};

/** `task/:id` under `/api` → `/api/task/{id}`, and the names of its path parameters. */
function openApiPath(base: string, path: string): { path: string; names: string[] } {
	const names: string[] = [];
	const joined = `${base.replace(/\/$/, "")}/${path}`.replace(/:([A-Za-z0-9_]+)/g, (_match, name: string) => {
		names.push(name);
		return `{${name}}`;
	});
	return { path: joined, names };
}

/** Every alias of every route, in the order the table lists them. */
export function operations(routes: RouteEntry[]): Operation[] {
	const found: Operation[] = [];
	for (const route of routes) {
		for (const [key, target] of Object.entries(route.aliases)) {
			const [method, path = ""] = key.trim().split(/\s+/);
			const chain = Array.isArray(target) ? target : [target];
			const action = chain.find((step): step is string => typeof step === "string");
			if (!method || !action) continue;
			const resolved = openApiPath(route.path, path);
			found.push({
				method: method.toUpperCase(),
				path: resolved.path,
				action,
				pathParams: resolved.names,
				authenticated: route.authentication === true,
				confirmed: chain.includes(confirmHeader)
			});
		}
	}
	return found;
}

function answers(operation: Operation): Record<string, unknown> {
	const error = {
		description: "An error",
		content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } }
	};
	const type = HTML_ACTIONS.has(operation.action)
		? "text/html"
		: TEXT_ACTIONS.has(operation.action)
			? "text/plain"
			: "application/json";
	const result: Record<string, unknown> = { "200": { description: "The answer", content: { [type]: { schema: {} } } } };
	if (operation.confirmed)
		result["202"] = {
			description: "A second confirmation is needed: repeat the call with `X-Confirm: <token>`",
			content: { "application/json": { schema: { type: "object", properties: { confirm: { type: "string" } } } } }
		};
	if (operation.authenticated) result["401"] = error;
	result["422"] = error;
	result.default = error;
	return result;
}

function operationObject(operation: Operation, action: ActionEntry | undefined): Record<string, unknown> {
	const schema = paramsSchema(action?.params);
	const properties = { ...((schema.properties as Record<string, JsonSchema> | undefined) ?? {}) };
	const required = new Set((schema.required as string[] | undefined) ?? []);
	const parameters: Record<string, unknown>[] = operation.pathParams.map(name => {
		const parameter = { name, in: "path", required: true, schema: properties[name] ?? { type: "string" } };
		delete properties[name];
		required.delete(name);
		return parameter;
	});
	if (operation.confirmed) parameters.push({ name: "X-Confirm", in: "header", required: false, schema: { type: "string" } });
	const result: Record<string, unknown> = {
		operationId: operation.action,
		tags: [operation.action.split(".")[0]],
		summary: action?.description ?? operation.action,
		parameters,
		responses: answers(operation)
	};
	const rest: JsonSchema = { ...schema, properties };
	if (required.size > 0) rest.required = [...required];
	else delete rest.required;
	if (BODY_METHODS.has(operation.method)) {
		if (action?.params)
			result.requestBody = { required: required.size > 0, content: { "application/json": { schema: rest } } };
	} else {
		for (const [name, property] of Object.entries(properties))
			parameters.push({ name, in: "query", required: required.has(name), schema: property });
	}
	if (operation.authenticated) result.security = [{ bearer: [] }];
	return result;
}

/** The OpenAPI 3.1 document of `routes`, with each operation's params taken from `actions`. */
export function openApiDocument(routes: RouteEntry[], actions: ActionEntry[], version: string): Record<string, unknown> {
	const byName = new Map(actions.map(action => [action.name, action]));
	const paths: Record<string, Record<string, unknown>> = {};
	for (const operation of operations(routes)) {
		const item = (paths[operation.path] ??= {});
		item[operation.method.toLowerCase()] = operationObject(operation, byName.get(operation.action));
	}
	return {
		openapi: "3.1.0",
		info: {
			title: "Tern",
			version,
			description: "Tern's REST API, generated from the routes it serves and the validator schema of each action."
		},
		servers: [{ url: "/" }],
		paths,
		components: {
			schemas: { Error: ERROR_SCHEMA },
			securitySchemes: {
				bearer: {
					type: "http",
					scheme: "bearer",
					description: "A user's JWT from POST /api/auth/login, an API token (tern_…) or a terminal's key."
				}
			}
		}
	};
}
