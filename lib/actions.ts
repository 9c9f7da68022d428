/**
 * The typed action registry: every action one service calls on another, with its params and its
 * result, in one place. Callers use `call()` below rather than `broker.call<R, P>()`, so that a
 * name, a param or a result cannot drift between the caller and the action; the action's own
 * fastest-validator schema sits beside its handler and is checked against these types by
 * `satisfies ParamsOf<…>` where it is declared.
 */
import type { CallingOptions } from "moleculer";
import type {
	AlertRuleView,
	CheckConfirmationParams,
	DispatcherStats,
	StorageState,
	ReconcileCheck,
	ReconcileReport,
	EvaluateParams,
	FleetSummary,
	ConfirmationChallenge,
	ConfirmRequest,
	GatewayPush,
	JobSummary,
	Presence,
	Principal,
	ReplyAnswer,
	SocketErrorPayload,
	SubmitResult,
	TaskBody,
	TaskQueryView,
	TaskView,
	TerminalRecord,
	TerminalReply,
	TerminalView
} from "./contracts.ts";
import type { AuditEntry, AuditQuery, AuditRow, AuditVerification } from "./contracts/security.ts";

type Answer = SubmitResult | { error: SocketErrorPayload };

export interface Actions {
	"auth.verify": { params: { token: string }; result: Principal };
	"auth.signTerminal": { params: { terminalId: string; keyVersion: number }; result: string };
	"auth.issueConfirmation": { params: ConfirmRequest; result: ConfirmationChallenge };
	"auth.checkConfirmation": { params: CheckConfirmationParams; result: unknown };
	"terminals.list": { params: { status?: string; label?: string }; result: TerminalView[] };
	"terminals.resolve": { params: { id: string }; result: TerminalRecord | null };
	"terminals.matching": { params: Record<string, never>; result: TerminalRecord[] };
	"terminals.touch": { params: { id: string; transport: "pull" }; result: { ok: boolean } };
	"gateway.pushMany": { params: { pushes: GatewayPush[] }; result: boolean[] };
	"gateway.sessions": { params: { offset: number; limit: number }; result: Presence[] };
	"cache.presenceList": { params: { offset?: number; limit?: number; terminalIds?: string[] }; result: Presence[] };
	"dispatcher.submit": { params: TaskBody; result: SubmitResult };
	"dispatcher.submitMany": { params: { tasks: TaskBody[] }; result: Answer[] };
	"dispatcher.submitOwned": { params: { tasks: TaskBody[]; principal?: Principal }; result: Answer[] };
	"dispatcher.drain": { params: { terminalId: string }; result: { ok: boolean } };
	"dispatcher.replies": { params: { replies: TerminalReply[] }; result: ReplyAnswer[] };
	"dispatcher.counts": { params: { terminalIds: string[] }; result: Record<string, { running: number; queued: number }> };
	"dispatcher.statuses": { params: { taskIds: string[] }; result: Record<string, string> };
	"dispatcher.query": { params: { taskId: string }; result: TaskQueryView };
	"dispatcher.get": { params: { id: string }; result: TaskView };
	"dispatcher.list": {
		params: {
			terminalId?: string;
			status?: string;
			type?: string;
			groupId?: string;
			page?: number;
			pageSize?: number;
			sort?: string;
		};
		result: { rows: TaskView[]; total: number; page: number; pageSize: number; totalPages: number };
	};
	"dispatcher.cancel": { params: { id: string }; result: TaskQueryView };
	"dispatcher.connected": { params: Presence; result: { ok: boolean } };
	"scheduler.list": { params: { page?: number; pageSize?: number }; result: { rows: JobSummary[]; total: number } };
	"scheduler.get": { params: { id: string }; result: JobSummary };
	"scheduler.history": { params: { id: string; pageSize?: number }; result: { rows: unknown[]; total: number } };
	"scheduler.execute": {
		params: { id: string };
		result: { jobId: string; fireTime: string; taskId: string | null; taskIds: string[] };
	};
	"scheduler.executeOwned": { params: { id: string }; result: { fireTime: number; taskIds: string[] } };
	"dispatcher.disconnected": { params: { terminalId: string; sessionId: string }; result: { ok: boolean } };
	"dispatcher.stats": { params: Record<string, never>; result: DispatcherStats };
	"dispatcher.storage": { params: Record<string, never>; result: StorageState };
	"dispatcher.reconcile": { params: Record<string, never>; result: ReconcileCheck[] };
	"scheduler.reconcile": { params: Record<string, never>; result: ReconcileCheck[] };
	"cache.reconcile": { params: Record<string, never>; result: ReconcileCheck[] };
	"monitor.reconcile": { params: Record<string, never>; result: ReconcileReport };
	"terminals.summary": { params: Record<string, never>; result: FleetSummary };
	/** The rules the monitor evaluates: enabled ones, built-in included. */
	"alert.activeRules": { params: Record<string, never>; result: AlertRuleView[] };
	"alert.evaluate": { params: EvaluateParams; result: { firing: number; notified: number } };
	"alert.firingCount": { params: Record<string, never>; result: { firing: number } };
	/** Appends entries to this audit node's chain, in order (lib/audit/middleware.ts sends them). */
	"audit.record": { params: { entries: AuditEntry[] }; result: { written: number } };
	"audit.list": { params: AuditQuery; result: { rows: AuditRow[]; total: number } };
	"audit.verify": { params: Record<string, never>; result: AuditVerification };
}

/**
 * A fastest-validator schema that has a rule for every field of `T` and no other (`$$strict`
 * aside): `schema satisfies SchemaFor<T>` fails to compile when the type and its validator drift.
 */
export type SchemaFor<T> = { [K in keyof Required<T>]: unknown } & { $$strict?: boolean };

export type ActionName = keyof Actions;
export type ParamsOf<A extends ActionName> = Actions[A]["params"];
export type ResultOf<A extends ActionName> = Actions[A]["result"];

/** A broker or a context: anything that can call an action. */
export interface Caller {
	call(action: string, params?: unknown, options?: CallingOptions): Promise<unknown>;
}

/** Calls a registered action with its declared params, answering its declared result. */
export function call<A extends ActionName>(
	caller: Caller,
	action: A,
	params: ParamsOf<A>,
	options?: CallingOptions
): Promise<ResultOf<A>> {
	return caller.call(action, params, options) as Promise<ResultOf<A>>;
}
