/**
 * The JSON body of a REST request, read and checked before anything walks it: its media type,
 * its size, its nesting and its keys. moleculer-web's body-parser would hand a validator (and,
 * through the validator's error, JSON.stringify) a value nested as deep as the sender likes;
 * this parser refuses such a body with an error that names the field, while the value is still
 * only text.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_JSON_DEPTH, deepPath, nulField, prototypeKey, textDepth } from "../bounded.ts";
import { Errors } from "../errors.ts";

export interface JsonBodyOptions {
	/** Largest body accepted, in bytes. @defaultValue 1 MiB */
	limit?: number;
	/** Deepest nesting accepted (the body object itself is one level). @defaultValue MAX_JSON_DEPTH */
	maxDepth?: number;
}

/** A request as moleculer-web's route middlewares see it: the parsed body goes on `req.body`. */
export type BodyRequest = IncomingMessage & { body?: unknown };

type Middleware = (req: BodyRequest, res: ServerResponse, next: (err?: unknown) => void) => void;

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** `application/json` or a structured `+json` type, in UTF-8 (JSON's only charset, RFC 8259). */
function isJson(contentType: string | undefined): boolean {
	if (!contentType) return false;
	const [media = "", ...params] = contentType.split(";").map(part => part.trim().toLowerCase());
	if (media !== "application/json" && !/^application\/[a-z0-9.!#$&^_-]+\+json$/.test(media)) return false;
	const charset = params
		.find(p => p.startsWith("charset="))
		?.slice(8)
		.replace(/"/g, "");
	return charset === undefined || charset === "utf-8" || charset === "utf8";
}

/**
 * The raw body as text, at most `limit` bytes. Past the limit (declared or counted) the rest is
 * read and dropped before the error is given, so that the client, still sending, reads the answer
 * instead of a reset connection.
 */
function readText(req: IncomingMessage, limit: number): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		let failure: unknown = null;
		let ended = false;
		const declared = Number(req.headers["content-length"]);
		if (Number.isFinite(declared) && declared > limit) failure = Errors.bodyTooLarge(limit);
		req.on("data", (chunk: Buffer) => {
			if (failure) return;
			size += chunk.length;
			if (size > limit) {
				failure = Errors.bodyTooLarge(limit);
				chunks.length = 0;
			} else chunks.push(chunk);
		});
		req.on("end", () => {
			ended = true;
			if (failure) reject(failure);
			else resolve(Buffer.concat(chunks, size).toString("utf8"));
		});
		req.on("error", err => reject(Errors.badRequest(`The request body could not be read: ${err.message}`)));
		req.on("close", () => {
			if (!ended) reject(Errors.badRequest("The request body ended before its declared length"));
		});
	});
}

/**
 * The body, parsed: `{}` when there is none, a plain object otherwise. Refuses, in this order, a
 * body in another media type (415), an unsupported content encoding (415), a body over the limit
 * (413), text that is not JSON (400), nesting past the limit (422 naming the field), a body that
 * is not an object (400), a key that would reach a prototype once merged (422) and a NUL
 * character in a key or a string outside `payload` and `output` (422 naming the field).
 */
export async function readJsonBody(req: IncomingMessage, options: JsonBodyOptions = {}): Promise<Record<string, unknown>> {
	const limit = options.limit ?? DEFAULT_BODY_LIMIT;
	const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
	const text = await readText(req, limit);
	// An empty body is no body, whatever it claims to be: `POST /tasks/:id/cancel` carries none.
	if (text.length === 0) return {};
	const contentType = req.headers["content-type"];
	if (!isJson(contentType)) throw Errors.unsupportedMediaType(contentType);
	const encoding = req.headers["content-encoding"]?.trim().toLowerCase();
	if (encoding && encoding !== "identity") throw Errors.unsupportedMediaType(`${contentType}; Content-Encoding: ${encoding}`);

	// The text's nesting is counted before parsing, so that only a body already known to be too
	// deep pays for the walk that names its field (JSON.parse itself is iterative and safe).
	const tooDeep = textDepth(text) > maxDepth;
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch (err) {
		if (tooDeep) throw Errors.tooDeep("", maxDepth);
		throw Errors.badRequest(`The request body is not valid JSON: ${(err as Error).message}`);
	}
	if (value === null || typeof value !== "object" || Array.isArray(value))
		throw Errors.badRequest(
			`The request body must be a JSON object, not ${Array.isArray(value) ? "an array" : String(value === null ? "null" : typeof value)}`
		);
	if (tooDeep) throw Errors.tooDeep(deepPath(value, maxDepth) ?? "", maxDepth);
	const key = prototypeKey(value);
	if (key !== null) throw Errors.prototypeKey(key);
	refuseNul(value);
	return value as Record<string, unknown>;
}

/**
 * Throws VALIDATION_ERROR (422) naming the field when a key or string of `value` holds a NUL
 * character (see nulField): for bodies here, for query strings and path params in the api, for
 * socket messages in the gateway.
 */
export function refuseNul(value: unknown, root = "body"): void {
	const field = nulField(value);
	if (field === null) return;
	const name = field || root;
	const message = `'${name}' must not contain a NUL character (\\u0000)`;
	throw Errors.validation(message, [{ type: "stringNul", field: name, message }]);
}

/** The parser as a moleculer-web route middleware (`use: [jsonBody()]`, with `bodyParsers: false`). */
export function jsonBody(options: JsonBodyOptions = {}): Middleware {
	return (req, _res, next) => {
		readJsonBody(req, options).then(body => {
			req.body = body;
			next();
		}, next);
	};
}
