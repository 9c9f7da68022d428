/**
 * The headers every HTTP answer of Tern carries, whatever answers it (a route, an error, a static
 * file, the 404 of an unknown path, socket.io's polling): no MIME sniffing, no framing, no
 * referrer, and a Content-Security-Policy for the web console served from `public/` (scripts and
 * styles from Tern's own origin only, no inline script; socket.io on the same origin). With TLS,
 * Strict-Transport-Security too.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";

/** One year: browsers then refuse plain HTTP to this host for as long. */
export const HSTS = "max-age=31536000";

/** A Host header fit to be repeated in a policy: a host name or address and a port, nothing else. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The Content-Security-Policy for a request to `host` (its Host header), over TLS or not. */
export function contentSecurityPolicy(host: string | undefined, tls: boolean): string {
	// 'self' covers ws:/wss: of the same host in current browsers; the explicit source is for the others.
	const sockets = host && HOST.test(host) ? ` ${tls ? "wss" : "ws"}://${host}` : "";
	return [
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"font-src 'self'",
		// The alarm page's sound is made in the page (a blob: URL).
		"media-src 'self' blob:",
		`connect-src 'self'${sockets}`,
		"object-src 'none'",
		"base-uri 'self'",
		"form-action 'self'",
		"frame-ancestors 'none'"
	].join("; ");
}

/** The secure headers for an answer to `req`, as a header map. */
export function secureHeaderMap(req: IncomingMessage, tls: boolean): Record<string, string> {
	const headers: Record<string, string> = {
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer",
		"Content-Security-Policy": contentSecurityPolicy(req.headers.host, tls)
	};
	if (tls) headers["Strict-Transport-Security"] = HSTS;
	return headers;
}

/** Sets the secure headers on `res` before anything else answers it. */
export function setSecureHeaders(req: IncomingMessage, res: ServerResponse, tls: boolean): void {
	for (const [name, value] of Object.entries(secureHeaderMap(req, tls))) res.setHeader(name, value);
}

/** Adds them to a header map another library is about to send (socket.io's `headers` event). */
export function addSecureHeaders(headers: OutgoingHttpHeaders, req: IncomingMessage, tls: boolean): void {
	Object.assign(headers, secureHeaderMap(req, tls));
}

/**
 * Cache headers of a static file of `public/`: what a build names by its content (Vite's
 * `assets/name-<hash>.js`) never changes, so it is kept a year; everything else (index.html)
 * is checked again on each load, so that a new release is seen at once.
 */
export function staticCacheHeaders(res: ServerResponse, path: string): void {
	const hashed = /[/\\]assets[/\\][^/\\]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/.test(path);
	res.setHeader("Cache-Control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
}
