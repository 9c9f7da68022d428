/**
 * Cross-origin access, closed by default: no `Access-Control-Allow-Origin` is ever sent unless
 * the operator lists origins (`TERN_CORS_ORIGINS`), and then only to a request from exactly one
 * of them. Tokens travel in the Authorization header, never in cookies, so no credentials are
 * allowed either. A request from another origin is not refused here: the browser refuses to let
 * its page read the answer, and a client that is not a browser was never bound by CORS.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export const CORS_METHODS = "GET, POST, PUT, PATCH, DELETE";
export const CORS_HEADERS = "Authorization, Content-Type, X-Confirm";
export const CORS_EXPOSED = "Retry-After";

/** Parses `TERN_CORS_ORIGINS`: a comma list of exact origins (`https://console.example.com`). */
export function parseOrigins(text: string | undefined): string[] {
	const origins = (text ?? "")
		.split(",")
		.map(s => s.trim())
		.filter(Boolean);
	for (const origin of origins) {
		let parsed: URL | null = null;
		try {
			parsed = new URL(origin);
		} catch {
			parsed = null;
		}
		if (!parsed || parsed.origin !== origin || !/^https?:$/.test(parsed.protocol))
			throw new TypeError(
				`TERN_CORS_ORIGINS: '${origin}' is not an origin (scheme://host[:port], no path or trailing slash)`
			);
	}
	return origins;
}

export class CorsPolicy {
	private readonly origins: ReadonlySet<string>;

	constructor(origins: readonly string[]) {
		this.origins = new Set(origins);
	}

	get open(): boolean {
		return this.origins.size > 0;
	}

	allows(origin: string | undefined): origin is string {
		return origin !== undefined && this.origins.has(origin);
	}

	/**
	 * Sets the CORS headers of an answer to `req` when its origin is listed. True when `req` was
	 * a preflight from a listed origin, now answered (204): nothing else must answer it.
	 */
	apply(req: IncomingMessage, res: ServerResponse): boolean {
		if (this.origins.size === 0) return false;
		res.setHeader("Vary", "Origin");
		const origin = req.headers.origin;
		if (!this.allows(origin)) return false;
		res.setHeader("Access-Control-Allow-Origin", origin);
		res.setHeader("Access-Control-Expose-Headers", CORS_EXPOSED);
		if (req.method !== "OPTIONS" || !req.headers["access-control-request-method"]) return false;
		res.writeHead(204, {
			"Access-Control-Allow-Methods": CORS_METHODS,
			"Access-Control-Allow-Headers": CORS_HEADERS,
			"Access-Control-Max-Age": "600",
			"Content-Length": "0"
		});
		res.end();
		return true;
	}
}
