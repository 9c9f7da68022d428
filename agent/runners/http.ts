/**
 * http: one HTTP request — `{ method, url, headers?, body?, timeout? }` — answered with
 * `{ status, headers, body }` (the body to its last `--output-limit` bytes). A status of 400 or
 * more is a FAILED task carrying the same output.
 *
 * Only hosts on the agent's allowlist (`--allow-hosts`: `host`, `host:port`, `*.domain`, `*`)
 * are called, and never a link-local or cloud-metadata address (169.254.0.0/16, fe80::/10,
 * 100.100.100.200, 168.63.129.16, fd00:ec2::254, metadata.google.internal) unless
 * `--allow-link-local` says so. Names are checked after DNS resolution, on the address actually
 * connected to, so a name that resolves to a metadata address is refused too. Redirects are
 * not followed.
 */
import http from "node:http";
import https from "node:https";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { payloadObject, RunnerError, stringRecord, TailBuffer, type RunContext, type RunOutcome, type Runner } from "./base.ts";

const METADATA_NAMES = new Set([
	"metadata.google.internal",
	"metadata",
	"metadata.azure.internal",
	"instance-data",
	"instance-data.ec2.internal"
]);

function ipv4ToInt(ip: string): number {
	return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

/** Link-local and cloud-metadata addresses: what an http task must not reach unless allowed. */
export function isBlockedAddress(address: string): boolean {
	let ip = address.toLowerCase().replace(/^\[|\]$/g, "");
	const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
	if (mapped) ip = mapped[1];
	if (isIP(ip) === 4) {
		const n = ipv4ToInt(ip);
		if (n >>> 16 === ((169 << 8) | 254)) return true; // 169.254.0.0/16
		return ip === "100.100.100.200" || ip === "168.63.129.16";
	}
	if (isIP(ip) === 6) {
		const first = parseInt(ip.split(":")[0] || "0", 16);
		if ((first & 0xffc0) === 0xfe80) return true; // fe80::/10
		return ip === "fd00:ec2::254";
	}
	return false;
}

/** Whether `host:port` is on the allowlist. */
export function hostAllowed(hostname: string, port: number, allow: readonly string[]): boolean {
	const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
	for (const raw of allow) {
		const entry = raw.toLowerCase();
		if (entry === "*") return true;
		let name = entry;
		let entryPort: number | null = null;
		const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
		if (v6) {
			name = v6[1];
			entryPort = v6[2] ? Number(v6[2]) : null;
		} else if (/^[^:]+:\d+$/.test(entry)) {
			name = entry.slice(0, entry.lastIndexOf(":"));
			entryPort = Number(entry.slice(entry.lastIndexOf(":") + 1));
		}
		if (entryPort !== null && entryPort !== port) continue;
		if (name.startsWith("*.") ? host.endsWith(name.slice(1)) : host === name) return true;
	}
	return false;
}

/** dns.lookup that refuses blocked addresses: what the socket connects to is what was checked. */
function guardedLookup(allowLinkLocal: boolean): LookupFunction {
	return ((hostname: string, options: object, callback: (...args: unknown[]) => void) => {
		dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
			if (err) return callback(err);
			const list = addresses as LookupAddress[];
			const usable = allowLinkLocal ? list : list.filter(a => !isBlockedAddress(a.address));
			if (usable.length === 0)
				return callback(
					Object.assign(
						new Error(`'${hostname}' resolves to a link-local/metadata address (${list[0]?.address}): not allowed`),
						{
							code: "EBLOCKED"
						}
					)
				);
			if ((options as { all?: boolean }).all) callback(null, usable);
			else callback(null, usable[0].address, usable[0].family);
		});
	}) as LookupFunction;
}

export class HttpRunner implements Runner {
	readonly name = "http";

	async check(): Promise<string | null> {
		return null;
	}

	async run(ctx: RunContext): Promise<RunOutcome> {
		const payload = payloadObject(ctx, "http");
		const method = (typeof payload.method === "string" ? payload.method : "GET").toUpperCase();
		if (!/^[A-Z]{1,16}$/.test(method))
			throw new RunnerError(`'method' must be an HTTP method, not '${String(payload.method)}'`);
		if (typeof payload.url !== "string") throw new RunnerError("The http runner needs 'url'");
		let url: URL;
		try {
			url = new URL(payload.url);
		} catch {
			throw new RunnerError(`'url' is not a valid URL: '${payload.url}'`);
		}
		if (url.protocol !== "http:" && url.protocol !== "https:")
			throw new RunnerError(`'url' must be http:// or https://, not '${url.protocol}'`);
		const host = url.hostname.replace(/^\[|\]$/g, "");
		const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
		const { allowHosts, allowLinkLocal, outputLimit } = ctx.config;
		if (!allowLinkLocal && (isBlockedAddress(host) || METADATA_NAMES.has(host.toLowerCase())))
			throw new RunnerError(
				`HTTP target '${url.host}' is a link-local/metadata address: not allowed on this terminal (--allow-link-local)`
			);
		if (!hostAllowed(host, port, allowHosts))
			throw new RunnerError(
				`HTTP target '${url.host}' is not allowed on this terminal: it is not on the agent's host allowlist (--allow-hosts ${
					allowHosts.length > 0 ? allowHosts.join(",") : "is empty"
				})`
			);
		const headers: Record<string, string> = { ...stringRecord(payload.headers, "headers") };
		let body: string | undefined;
		if (payload.body !== undefined && payload.body !== null) {
			if (typeof payload.body === "string") body = payload.body;
			else {
				body = JSON.stringify(payload.body);
				if (!Object.keys(headers).some(h => h.toLowerCase() === "content-type"))
					headers["content-type"] = "application/json";
			}
		}
		const started = Date.now();
		const client = url.protocol === "https:" ? https : http;
		return new Promise<RunOutcome>((resolve, reject) => {
			const req = client.request(
				url,
				{ method, headers, lookup: guardedLookup(allowLinkLocal), signal: ctx.signal },
				res => {
					const kept = new TailBuffer(outputLimit);
					res.on("data", (chunk: Buffer) => kept.write(chunk));
					res.on("error", err => reject(new RunnerError(`HTTP ${method} ${url.href}: ${err.message}`)));
					res.on("end", () => {
						const status = res.statusCode ?? 0;
						const output = {
							status,
							statusText: res.statusMessage ?? "",
							headers: res.headers,
							body: kept.toString(),
							...(kept.truncated ? { truncated: true, bodyBytes: kept.total } : {}),
							durationMs: Date.now() - started
						};
						if (status < 400) resolve({ status: "success", output });
						else
							resolve({
								status: "failed",
								output,
								error: `HTTP ${status} ${res.statusMessage ?? ""}`.trim() + ` from ${method} ${url.href}`
							});
					});
				}
			);
			req.on("error", err => {
				if (ctx.signal.aborted)
					return reject(new RunnerError((ctx.signal.reason as { message?: string })?.message ?? "stopped"));
				const code = (err as NodeJS.ErrnoException).code;
				reject(
					new RunnerError(
						code === "EBLOCKED"
							? `HTTP target refused: ${err.message}`
							: `HTTP ${method} ${url.href} failed: ${err.message}`
					)
				);
			});
			if (body !== undefined) req.end(body);
			else req.end();
		});
	}
}
