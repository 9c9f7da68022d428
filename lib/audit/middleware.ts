/**
 * The audit middleware: every mutating call from outside (lib/contracts/access.ts) is reported to
 * the audit log with its caller, object, outcome and changes; so is every call to an action of
 * the table refused as FORBIDDEN, TASK_NOT_YOURS or INVALID_TOKEN, reads included (a terminal
 * trying another's task shows up). The terminals' lifecycle replies (ack, progress, result,
 * pull) are written in their task's own history, so only their refusals are reported here,
 * whether they came over REST or, batched by a gateway, over a socket (`dispatcher.replies`).
 *
 * The report never holds the call up: it is queued, and sent with the others of the same turn
 * (lib/audit/shipper.ts). Only the outermost reported call of a request is written: a job's
 * `execute` that submits a task is one row, not two.
 *
 * Its hook wraps the broker's own middlewares (the validator, the error handler) as well as the
 * access check, so that a call the validator refuses is reported with VALIDATION_ERROR: Moleculer
 * puts middlewares of the options inside its own, so this one adds its hook once they are there.
 */
import type { ActionHandler, ActionSchema, Context, Middleware, Service, ServiceBroker } from "moleculer";
import { ACCESS, type ActionAccess } from "../contracts/access.ts";
import type { RepliesParams, ReplyAnswer, TernMeta } from "../contracts/core.ts";
import { call } from "../actions.ts";
import { toEntry, type AuditedCall } from "./entry.ts";
import { AuditShipper } from "./shipper.ts";

/** Replies of terminals on their tasks: reported only when refused. */
const LIFECYCLE: ReadonlySet<string> = new Set(["dispatcher.ack", "dispatcher.progress", "dispatcher.result", "dispatcher.pull"]);

/** Refusals reported whatever the action (reads too). */
export const REFUSALS: ReadonlySet<string> = new Set(["FORBIDDEN", "TASK_NOT_YOURS", "INVALID_TOKEN"]);

/** The request whose outermost reported call is under way; child contexts inherit a copy of meta. */
const MARK = "$auditedRequest";
type AuditMeta = TernMeta & { [MARK]?: string | null; $statusCode?: number };

/** How long a stopping node keeps trying to send what it queued, ms. */
const CLOSE_TIMEOUT_MS = 3000;
/** How long one `audit.record` call may take, ms. */
const RECORD_TIMEOUT_MS = 5000;

const shippers = new WeakMap<ServiceBroker, AuditShipper<AuditedCall>>();

/** The shipper of a broker (tests read its counts). */
export function auditShipperOf(broker: ServiceBroker): AuditShipper<AuditedCall> | undefined {
	return shippers.get(broker);
}

const typeOf = (err: unknown) => {
	const type = (err as { type?: unknown } | null)?.type;
	return typeof type === "string" && type ? type : "INTERNAL_ERROR";
};

/** A destructive call's first answer: 202 and a confirmation to send back. Nothing changed yet. */
function isChallenge(ctx: Context<unknown, AuditMeta>, result: unknown): boolean {
	return ctx.meta.$statusCode === 202 && result !== null && typeof result === "object" && "confirm" in result;
}

function invoke(next: ActionHandler, service: Service, ctx: Context): Promise<unknown> {
	try {
		return Promise.resolve(next.call(service, ctx));
	} catch (err) {
		return Promise.reject(err);
	}
}

/**
 * `dispatcher.replies`: the acks and results a gateway batched from its terminals' sockets. Its
 * caller is the gateway (trusted, no principal); the terminal of each reply is in the reply, and a
 * refusal is an answer, not an error. Refusals are reported as the terminal's own call.
 */
function wrapReplies(shipper: AuditShipper<AuditedCall>, next: ActionHandler): ActionHandler {
	return function auditedReplies(this: Service, ctx: Context<RepliesParams, AuditMeta>) {
		const at = Date.now();
		return invoke(next, this, ctx).then(answers => {
			if (!Array.isArray(answers)) return answers;
			for (let i = 0; i < answers.length; i++) {
				const answer = answers[i] as ReplyAnswer;
				if (!("error" in answer) || !REFUSALS.has(answer.error.type)) continue;
				const reply = ctx.params.replies[i];
				if (!reply) continue;
				const { kind, terminalId, ...params } = reply;
				const name = `dispatcher.${kind}`;
				shipper.add({
					at,
					action: name,
					access: ACCESS[name]!,
					params,
					principal: { kind: "terminal", terminalId },
					client: undefined,
					outcome: answer.error.type
				});
			}
			return answers;
		});
	} as ActionHandler;
}

function wrap(shipper: AuditShipper<AuditedCall>, next: ActionHandler, action: ActionSchema): ActionHandler {
	const name = action.name;
	if (name === "dispatcher.replies") return wrapReplies(shipper, next);
	const access: ActionAccess | undefined = name ? ACCESS[name] : undefined;
	if (!name || !access) return next;
	const always = access.mutates && !LIFECYCLE.has(name);
	const report = (ctx: Context<unknown, AuditMeta>, at: number, outcome: string, result?: unknown) =>
		shipper.add({
			at,
			action: name,
			access,
			params: ctx.params,
			principal: ctx.meta.principal,
			client: ctx.meta.client,
			outcome,
			result
		});

	return function audited(this: Service, ctx: Context<unknown, AuditMeta>) {
		const meta = ctx.meta;
		if (meta[MARK] === ctx.requestID) return next.call(this, ctx);
		if (!meta.principal && access.access !== "public") return next.call(this, ctx);
		const at = Date.now();
		if (!always)
			return invoke(next, this, ctx).catch(err => {
				if (REFUSALS.has(typeOf(err))) report(ctx, at, typeOf(err));
				throw err;
			});
		meta[MARK] = ctx.requestID ?? null;
		return invoke(next, this, ctx).then(
			result => {
				if (!isChallenge(ctx, result)) report(ctx, at, "ok", result);
				return result;
			},
			err => {
				report(ctx, at, typeOf(err));
				throw err;
			}
		);
	} as ActionHandler;
}

export const AuditMiddleware: Middleware = {
	name: "Audit",

	created(broker: ServiceBroker) {
		const shipper = new AuditShipper<AuditedCall>({
			send: entries => call(broker, "audit.record", { entries }, { timeout: RECORD_TIMEOUT_MS }),
			build: toEntry,
			logger: broker.getLogger("audit")
		});
		shippers.set(broker, shipper);
		broker.middlewares.add({
			name: "AuditOutermost",
			localAction: (next: ActionHandler, action: ActionSchema) => wrap(shipper, next, action)
		});
	},

	async stopping(broker: ServiceBroker) {
		await shippers.get(broker)?.close(CLOSE_TIMEOUT_MS);
	}
};
