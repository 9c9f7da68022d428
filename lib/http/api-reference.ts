/**
 * `GET /api/docs`: the REST API's reference as one HTML page, rendered on the server from the
 * OpenAPI document (lib/http/openapi.ts), so that it needs no script (the gateway's
 * Content-Security-Policy allows none inline) and reads the same in any browser or `curl`.
 * Every value is escaped: descriptions and patterns come from the actions' schemas.
 */
import type { JsonSchema } from "./json-schema.ts";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escape(text: unknown): string {
	return String(text).replace(/[&<>"']/g, char => ESCAPES[char] ?? char);
}

/** A schema in a few words: `integer 1–1000`, `"a" | "b"`, `string ≤ 255`. */
export function describeSchema(schema: JsonSchema | undefined): string {
	if (!schema) return "any";
	if (Array.isArray(schema.anyOf)) return (schema.anyOf as JsonSchema[]).map(describeSchema).join(" or ");
	if (Array.isArray(schema.enum)) return schema.enum.map(value => JSON.stringify(value)).join(" | ");
	if (schema.const !== undefined) return JSON.stringify(schema.const);
	const type = typeof schema.type === "string" ? schema.type : "any";
	const low = schema.minimum ?? schema.minLength ?? schema.minItems;
	const high = schema.maximum ?? schema.maxLength ?? schema.maxItems;
	const range =
		low !== undefined && high !== undefined
			? ` ${low}–${high}`
			: high !== undefined
				? ` ≤ ${high}`
				: low !== undefined
					? ` ≥ ${low}`
					: "";
	if (type === "array") return `array of ${describeSchema(schema.items as JsonSchema | undefined)}${range}`;
	return `${type}${typeof schema.format === "string" ? ` (${schema.format})` : ""}${range}`;
}

interface Parameter {
	name: string;
	in: string;
	required?: boolean;
	schema?: JsonSchema;
}

/** The rows of an operation's table: path, query and header parameters, then the body's fields. */
function fields(operation: Record<string, unknown>): Parameter[] {
	const rows = [...((operation.parameters as Parameter[] | undefined) ?? [])];
	const body = (operation.requestBody as { content?: Record<string, { schema?: JsonSchema }> } | undefined)?.content?.[
		"application/json"
	]?.schema;
	const required = new Set((body?.required as string[] | undefined) ?? []);
	for (const [name, schema] of Object.entries((body?.properties as Record<string, JsonSchema> | undefined) ?? {}))
		rows.push({ name, in: "body", required: required.has(name), schema });
	return rows;
}

function operationHtml(method: string, path: string, operation: Record<string, unknown>): string {
	const rows = fields(operation)
		.map(
			row =>
				`<tr><td><code>${escape(row.name)}</code></td><td>${escape(row.in)}</td>` +
				`<td>${row.required ? "yes" : ""}</td><td>${escape(describeSchema(row.schema))}</td></tr>`
		)
		.join("");
	const table = rows
		? `<table><thead><tr><th>field</th><th>in</th><th>required</th><th>takes</th></tr></thead><tbody>${rows}</tbody></table>`
		: "<p>No parameters.</p>";
	const auth = operation.security ? "Needs <code>Authorization: Bearer &lt;token&gt;</code>." : "No authentication.";
	return (
		`<section id="${escape(operation.operationId)}"><h3><code>${escape(method.toUpperCase())} ${escape(path)}</code></h3>` +
		`<p>${escape(operation.summary)} — <code>${escape(operation.operationId)}</code>. ${auth}</p>${table}</section>`
	);
}

/** The page for `document`, grouped by tag (the service answering). */
export function apiReferenceHtml(document: Record<string, unknown>): string {
	const info = document.info as { title: string; version: string };
	const groups = new Map<string, string[]>();
	for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, Record<string, unknown>>>)) {
		for (const [method, operation] of Object.entries(item)) {
			const tag = ((operation.tags as string[] | undefined) ?? ["other"])[0] ?? "other";
			if (!groups.has(tag)) groups.set(tag, []);
			groups.get(tag)?.push(operationHtml(method, path, operation));
		}
	}
	const index = [...groups.keys()].map(tag => `<a href="#tag-${escape(tag)}">${escape(tag)}</a>`).join(" · ");
	const sections = [...groups.entries()]
		.map(([tag, items]) => `<h2 id="tag-${escape(tag)}">${escape(tag)}</h2>${items.join("")}`)
		.join("");
	return (
		`<!doctype html><html lang="en"><meta charset="utf-8"><title>${escape(info.title)} API ${escape(info.version)}</title>` +
		`<h1>${escape(info.title)} API <small>${escape(info.version)}</small></h1>` +
		'<p>Generated from the routes this node serves. Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1). ' +
		"Every error answers <code>{ name, message, code, type, data }</code>.</p>" +
		`<nav>${index}</nav>${sections}</html>`
	);
}
