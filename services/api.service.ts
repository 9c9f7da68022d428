/**
 * api: the REST surface and the static web UI. Routes map to actions and nothing more; the
 * caller's principal is settled once, in `authenticate`, and the actions decide what it may do.
 */
import { fileURLToPath } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { call } from "../lib/actions.ts";
import type { Principal, TernMeta } from "../lib/contracts.ts";
import { Errors, TRANSIENT_TYPES, toErrorPayload } from "../lib/errors.ts";
import { jsonBody, refuseNul } from "../lib/http/body.ts";
import { OWNER_STRATEGY, ownerEndpoint } from "../lib/owner-strategy.ts";
import { OwnerCache } from "../lib/owners.ts";
import { confirmHeader } from "../lib/confirm.ts";
import { RuntimeSettingsMixin } from "../mixins/runtime-settings.mixin.ts";
import { readiness } from "../lib/health.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "../lib/metrics/reporter.ts";
import { RequestGuard, type RequestLimits } from "../lib/http/guard.ts";
import { staticCacheHeaders } from "../lib/http/headers.ts";
import { CONSOLE_NOT_BUILT, ConsoleIndex, consoleAliases } from "../lib/http/console.ts";
import { openApiDocument, type ActionEntry, type RouteEntry } from "../lib/http/openapi.ts";
import { apiReferenceHtml } from "../lib/http/api-reference.ts";
import { VERSION } from "../lib/version.ts";

export interface ApiSettings extends ServiceSettingSchema {
	/** @defaultValue 3000 */
	port: number;
	/**
	 * Tern's rate limits (lib/http/guard.ts), per client address before authentication and per
	 * token after it; null for none. Not moleculer-web's `rateLimit`, which stays unset.
	 * @defaultValue 2000 requests/s per address, 200 per token
	 */
	requestLimits: RequestLimits | null;
	/** moleculer-web's HTTPS: the PEM certificate chain and key; null serves plain HTTP. @defaultValue null */
	https: { cert: string; key: string } | null;
	/** Origins allowed by CORS (exact); empty: no CORS header is ever sent. @defaultValue [] */
	corsOrigins: string[];
	/** qs options for query strings. */
	qsOptions: Record<string, unknown>;
	/** moleculer-web routes. */
	routes: Record<string, unknown>[];
	assets: { folder: string; options: Record<string, unknown> };
	/** moleculer-web's log level for request params; null: never logged. */
	logRequestParams: string | null;
}

/** What moleculer-web has put on the request by the time it authorizes it. */
type RoutedRequest = IncomingMessage & {
	$action?: { name: string; strategy?: unknown };
	$endpoint?: unknown;
	$params?: Record<string, unknown>;
};

const PUBLIC_DIR = fileURLToPath(new URL("../public", import.meta.url));

/**
 * Bodies are read by Tern's own JSON parser, not body-parser: it refuses other media types (415),
 * and nesting past the limit before any validator, redactor or logger walks the value.
 */
// 2 MiB: room for a result a little past the default result limit, so that it is read and refused
// as RESULT_TOO_LARGE (its task failed) rather than cut off as a body too large.
const body = { bodyParsers: false, use: [jsonBody({ limit: 2 * 1024 * 1024 })], onBeforeCall: noteClient };

/** Where a call came from, for the audit log (the socket's address: Tern trusts no forwarding header). */
function noteClient(ctx: Context<unknown, TernMeta>, _route: unknown, req: IncomingMessage): void {
	const agent = req.headers["user-agent"];
	ctx.meta.client = { address: req.socket.remoteAddress ?? null, userAgent: agent ? agent.slice(0, 255) : null };
}

/**
 * One part of a query string, decoded as qs would, except that malformed percent-encoding is the
 * caller's mistake (400), not a value to pass on undecoded.
 */
function decodeQueryPart(text: string): string {
	const spaced = text.replace(/\+/g, " ");
	if (!spaced.includes("%")) return spaced;
	try {
		return decodeURIComponent(spaced);
	} catch {
		throw Errors.badEncoding("query", text);
	}
}

/** What an action may tell moleculer-web about its HTTP answer. */
interface HttpMeta {
	$responseType?: string;
	$statusCode?: number;
	$responseHeaders?: Record<string, string>;
}

interface ApiVars {
	/** Owners of terminals among the dispatcher replicas, remembered until the replicas change. */
	owners: OwnerCache;
	/** Secure headers, CORS and rate limits of every request. */
	guard: RequestGuard;
	/** moleculer-web's: the server is HTTPS. */
	isHTTPS?: boolean;
	/** The web console's page, for its own paths. */
	console: ConsoleIndex;
}

type HttpHandler = (req: IncomingMessage, res: ServerResponse, next?: unknown) => unknown;
const webMethods = (ApiGateway as unknown as { methods: Record<string, (...args: unknown[]) => unknown> }).methods;

const ApiService: ServiceSchema<ApiSettings, Record<string, never>, ApiVars> = {
	name: "api",
	mixins: [
		ApiGateway as unknown as Partial<ServiceSchema>,
		RuntimeSettingsMixin<Service<ApiSettings> & ApiVars>({
			/** The limit per client address, read on each request; 0 lifts it. */
			rateLimit(value) {
				this.guard.byAddress.limit = value;
			}
		})
	],
	settings: {
		// The TLS key never leaves this node in the service registry.
		$secureSettings: ["https"],
		port: 3000,
		requestLimits: { window: 1000, address: 2000, token: 200 },
		https: null,
		corsOrigins: [],
		// Request bodies carry secrets (task secrets, passwords, script bodies): never logged, at any level.
		logRequestParams: null,
		// qs nests `a[b][c]` at most `depth` levels (the rest stays one literal key) and drops keys
		// that would shadow Object.prototype; the limits are qs's defaults, written down.
		qsOptions: { depth: 5, arrayLimit: 20, parameterLimit: 1000, allowPrototypes: false, decoder: decodeQueryPart },
		routes: [
			{
				path: "/api/auth",
				mappingPolicy: "restrict",
				...body,
				aliases: {
					"POST login": "auth.login"
				}
			},
			{
				path: "/api",
				mappingPolicy: "restrict",
				authentication: true,
				authorization: true,
				...body,
				aliases: {
					"POST task/submit": "dispatcher.submit",
					"POST tasks/batch": "dispatcher.submitBatch",
					"GET task/pull": "dispatcher.pull",
					"POST task/ack": "dispatcher.ack",
					"POST task/progress": "dispatcher.progress",
					"POST task/result": "dispatcher.result",
					"GET task/query": "dispatcher.query",

					"GET tasks": "dispatcher.list",
					"GET tasks/:id": "dispatcher.get",
					"POST tasks/:id/cancel": "dispatcher.cancel",
					"GET tasks/:id/logs": "dispatcher.logs",
					"POST tasks/purge": [confirmHeader, "dispatcher.purge"],

					"GET terminals": "terminals.list",
					"POST terminals": "terminals.register",
					"GET terminals/:id": "terminals.get",
					"POST terminals/:id/disable": "terminals.disable",
					"POST terminals/:id/enable": "terminals.enable",
					"POST terminals/:id/rotate-key": [confirmHeader, "terminals.rotateKey"],
					"PATCH terminals/:id": "terminals.patch",
					"DELETE terminals/:id": [confirmHeader, "terminals.delete"],
					"POST terminals/:id/drain": "terminals.drain",
					"POST terminals/:id/undrain": "terminals.undrain",

					"POST jobs": "scheduler.create",
					"POST jobs/preview": "scheduler.preview",
					"GET jobs": "scheduler.list",
					"GET jobs/:id": "scheduler.get",
					"PUT jobs/:id": "scheduler.update",
					"DELETE jobs/:id": [confirmHeader, "scheduler.remove"],
					"POST jobs/:id/execute": "scheduler.execute",
					"POST jobs/:id/cancel": "scheduler.cancel",
					"POST jobs/:id/pause": "scheduler.pause",
					"POST jobs/:id/resume": "scheduler.resume",
					"GET jobs/:id/history": "scheduler.history",

					"POST scripts": "scripts.create",
					"GET scripts": "scripts.catalog",
					"GET scripts/:name": "scripts.latest",
					"GET scripts/:name/versions/:version": "scripts.getVersion",
					"DELETE scripts/:name": [confirmHeader, "scripts.remove"],

					"GET alert-rules": "alert.listRules",
					"POST alert-rules": "alert.createRule",
					"GET alert-rules/:id": "alert.getRule",
					"PUT alert-rules/:id": "alert.updateRule",
					"DELETE alert-rules/:id": "alert.removeRule",
					"GET alert-channels": "alert.listChannels",
					"POST alert-channels": "alert.createChannel",
					"GET alert-channels/:id": "alert.getChannel",
					"PUT alert-channels/:id": "alert.updateChannel",
					"DELETE alert-channels/:id": "alert.removeChannel",
					"POST alert-channels/:id/test": "alert.testChannel",
					"GET alerts": "alert.listAlerts",
					"GET alerts/:id": "alert.getAlert",
					"POST alerts/:id/ack": "alert.ack",
					"GET silences": "alert.listSilences",
					"POST silences": "alert.createSilence",
					"DELETE silences/:id": "alert.endSilence",

					"POST users": "auth.createUser",
					"GET users": "auth.listUsers",
					"PATCH users/:id": "auth.updateUser",
					"DELETE users/:id": [confirmHeader, "auth.removeUser"],

					"POST auth/logout": "auth.logout",
					"POST tokens": "auth.createToken",
					"GET tokens": "auth.listTokens",
					"DELETE tokens/:id": "auth.revokeToken",

					"GET audit": "audit.list",
					"POST audit/verify": "audit.verify",

					"GET system/status": "monitor.status",
					"POST system/reconcile": "monitor.reconcile",
					"GET system/config": "monitor.config",
					"PUT system/config": "monitor.updateConfig"
				}
			},
			{
				// This node's own metrics and health, without auth (docs/monitoring.md: restrict /metrics at the ingress).
				path: "/",
				mappingPolicy: "restrict",
				bodyParsers: false,
				aliases: {
					"GET metrics": "api.metrics",
					"GET healthz/live": "api.live",
					"GET healthz/ready": "api.ready",
					"GET api/version": "monitor.version",
					"GET api/openapi.json": "api.openapi",
					"GET api/docs": "api.reference",
					// The web console's pages (lib/contracts/console.ts): a reload of /tasks/… gets the console.
					...consoleAliases("api.console")
				}
			}
		],
		// serve-static (through `send`) refuses paths that climb out of the folder, decoded or not,
		// and dotfiles; each answer gets its cache headers.
		assets: { folder: PUBLIC_DIR, options: { dotfiles: "ignore", redirect: false, setHeaders: staticCacheHeaders } }
	},
	actions: {
		/** `GET /metrics`: this node's metrics as Prometheus text; 404 when TERN_METRICS=off. */
		metrics(this: Service<ApiSettings>, ctx: Context<unknown, HttpMeta>) {
			const text = renderMetrics(this.broker);
			ctx.meta.$responseType = METRICS_CONTENT_TYPE;
			if (text === null) {
				ctx.meta.$statusCode = 404;
				return "# metrics are off (TERN_METRICS=off)\n";
			}
			return text;
		},

		/** The console's `index.html` for one of its pages; 503 with how to build it when it is not built. */
		async console(this: Service<ApiSettings> & ApiVars, ctx: Context<unknown, HttpMeta>) {
			const html = await this.console.html();
			ctx.meta.$responseType = "text/html; charset=utf-8";
			ctx.meta.$responseHeaders = { "Cache-Control": "no-cache" };
			if (html === null) ctx.meta.$statusCode = 503;
			return html ?? CONSOLE_NOT_BUILT;
		},

		/** `GET /api/openapi.json`: the REST API's OpenAPI 3.1 description, from the routes and the actions' schemas. */
		openapi(this: Service<ApiSettings>) {
			const actions = this.broker.registry
				.getActionList({ skipInternal: true })
				.map((item: { name: string; action?: { params?: Record<string, unknown> } }): ActionEntry => ({
					name: item.name,
					params: item.action?.params
				}));
			return openApiDocument(this.settings.routes as unknown as RouteEntry[], actions, VERSION);
		},

		/** `GET /api/docs`: the same description as a page to read. */
		async reference(this: Service<ApiSettings>, ctx: Context<unknown, HttpMeta>) {
			ctx.meta.$responseType = "text/html; charset=utf-8";
			return apiReferenceHtml(await ctx.call<Record<string, unknown>>("api.openapi"));
		},

		/** `GET /healthz/live`: the process answers. */
		live(this: Service<ApiSettings>) {
			return { live: true, nodeID: this.broker.nodeID };
		},

		/** `GET /healthz/ready`: this node's readiness (lib/health.ts), 503 when not ready. */
		async ready(this: Service<ApiSettings>, ctx: Context<unknown, HttpMeta>) {
			const broker = this.broker as typeof this.broker & { started?: boolean; stopping?: boolean };
			const report = await readiness(this.broker, () => Boolean(broker.started) && !broker.stopping);
			if (!report.ready) ctx.meta.$statusCode = 503;
			return report;
		}
	},
	methods: {
		/** Bearer token → principal in `ctx.meta.principal`; 401 when missing or invalid. */
		async authenticate(ctx: Context<unknown, TernMeta>, _route: unknown, req: IncomingMessage): Promise<Principal> {
			const header = req.headers.authorization;
			if (!header) throw Errors.unauthorized();
			if (!header.startsWith("Bearer ")) throw Errors.invalidToken("use 'Authorization: Bearer <token>'");
			const principal = await call(ctx, "auth.verify", { token: header.slice(7).trim() });
			(this as unknown as ApiVars).guard.caller(principal);
			ctx.meta.principal = principal;
			return principal;
		},

		/** moleculer-web's, behind Tern's secure headers, CORS and the limit per client address. */
		httpHandler(this: Service<ApiSettings> & ApiVars, req: IncomingMessage, res: ServerResponse, next?: unknown) {
			const front = this.guard.front(req, res, Boolean(this.isHTTPS));
			if (front === "answered") return;
			if (front) return void (this as unknown as { sendError: HttpHandler }).sendError(req, res, front);
			return (webMethods.httpHandler as HttpHandler).call(this, req, res, next);
		},

		/**
		 * The caller's access to the action (lib/access/middleware.ts), before validation. A call about a terminal goes to the
		 * dispatcher replica that owns it (lib/owner-strategy.ts), picked here once its params and
		 * caller are known: moleculer-web picks the endpoint before both, and Moleculer would take a
		 * local one over the owner.
		 */
		authorize(this: Service<ApiSettings> & ApiVars, ctx: Context<unknown, TernMeta>, _route: unknown, req: RoutedRequest) {
			// The body was checked as it was read; this covers the query string and the path.
			refuseNul(req.$params, "params");
			if (req.$action?.strategy !== OWNER_STRATEGY) return;
			const endpoint = ownerEndpoint(this.broker, this.owners, req.$action.name, req.$params, ctx.meta);
			if (endpoint) req.$endpoint = endpoint;
		},

		/** Every error as `{ name, message, code, type, data }`, with messages a person can act on. */
		reformatError(err: { type?: string; message?: string; code?: number; data?: { param?: unknown } }) {
			// moleculer-web's own, for a path parameter that does not decode.
			if (err.type === "UNABLE_DECODE_PARAM") return toErrorPayload(Errors.badEncoding("path", String(err.data?.param)));
			return toErrorPayload(err);
		},

		/**
		 * moleculer-web's, except that a service no node offers right now answers 503 (try again), not
		 * 404; and an error that cannot be encoded still ends the response instead of the process.
		 */
		sendError(req: IncomingMessage, res: ServerResponse, err: unknown) {
			if (err instanceof Error && TRANSIENT_TYPES.has((err as { type?: string }).type ?? ""))
				(err as Error & { code: number }).code = 503;
			// A RATE_LIMITED answer says when to come back, in the header as in the body.
			const retryAfter = (err as { type?: string; data?: { retryAfter?: unknown } }).data?.retryAfter;
			if ((err as { type?: string }).type === "RATE_LIMITED" && typeof retryAfter === "number" && !res.headersSent)
				res.setHeader("Retry-After", String(retryAfter));
			try {
				return webMethods.sendError.call(this, req, res, err);
			} catch (failure) {
				this.logger.error("An error answer could not be sent:", (failure as Error).message);
				if (res.writableEnded) return;
				if (!res.headersSent) res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
				res.end(JSON.stringify({ name: "Error", message: "Internal error", code: 500, type: "INTERNAL_ERROR" }));
			}
		}
	},
	created(this: Service<ApiSettings> & ApiVars) {
		this.owners = new OwnerCache();
		this.console = new ConsoleIndex(PUBLIC_DIR);
		this.guard = new RequestGuard({ limits: this.settings.requestLimits, corsOrigins: this.settings.corsOrigins });
	}
};

export default ApiService;
