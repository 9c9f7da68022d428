/**
 * Monitoring and alerting: what the monitor measures (signals), the rules that judge them, the
 * alerts they raise and the channels that carry the news. The monitor evaluates; the alert
 * service keeps rules, alerts, silences and channels, and sends.
 */
import type { Labels } from "./core.ts";
import type { NodeStorage } from "./faults.ts";

/**
 * What a rule can measure. The monitor computes each one cluster-wide every evaluation tick;
 * a signal with labels (per terminal, per node, per job) yields one series per label set, and
 * each series is an alert of its own (grouped by rule and labels).
 */
export const SIGNALS = {
	/** Terminals online now (one series). */
	terminals_online: "count",
	/** Fall of online terminals within the window: (highest in window − now) / highest, 0..1. */
	terminals_online_drop: "ratio",
	/** Seconds each terminal labelled `critical: "true"` has been offline (labels `terminalId`). */
	terminal_offline_seconds: "seconds",
	/** Tasks that ended TIMEOUT / tasks that ended, within the window, 0..1 (0 when none ended). */
	task_timeout_rate: "ratio",
	/** Tasks that ended FAILED / tasks that ended, within the window, 0..1. */
	task_failure_rate: "ratio",
	/** Tasks in PENDING now. */
	tasks_pending: "count",
	/** Age of the oldest PENDING task, seconds (0 when none waits). */
	queue_oldest_seconds: "seconds",
	/** Fires that were MISSED or found NO_TERMINAL within the window (labels `jobId`, `outcome`). */
	job_fire_problems: "count",
	/** 1 for each Tern node that left without saying goodbye and has not come back (labels `nodeID`). */
	node_down: "count",
	/** Round trip of `SELECT 1` to the database; a failed or timed-out ping counts as `dbPingTimeout`. */
	database_latency_seconds: "seconds",
	/** 1 for each dispatcher in degraded mode, its database unreachable (labels `nodeID`). */
	storage_degraded: "count"
} as const;
export type SignalName = keyof typeof SIGNALS;
export const SIGNAL_NAMES = Object.keys(SIGNALS) as SignalName[];

export const CONDITIONS = [">", ">=", "<", "<=", "=="] as const;
export type Condition = (typeof CONDITIONS)[number];

export const SEVERITIES = ["info", "warning", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Escalation {
	/** Seconds a firing alert may stay unacknowledged before the escalation channels hear of it. */
	after: number;
	channels: string[];
}

/** The body of `POST /api/alert-rules` (and, all optional, of `PUT /api/alert-rules/:id`). */
export interface AlertRuleBody {
	name: string;
	enabled?: boolean;
	severity?: Severity;
	/** The signal judged: `condition threshold` (`task_timeout_rate > 0.05`). */
	metric: SignalName;
	condition: Condition;
	threshold: number;
	/** Seconds the signal looks back (rates, drops, fire problems). @defaultValue 300 */
	window?: number;
	/** Seconds the condition must hold before the alert fires (pending until then). @defaultValue 0 */
	for?: number;
	/** Only series whose labels include these (`{ terminalId: "t1" }`). */
	matchers?: Labels;
	/** Added to every alert of the rule, and so to every notification. */
	labels?: Labels;
	/** Channel ids notified on firing, repeat and resolve. */
	channels?: string[];
	/** Seconds between reminders while firing and unacknowledged; 0 sends none. @defaultValue 3600 */
	repeatInterval?: number;
	escalation?: Escalation | null;
}

export interface AlertRuleView extends Required<Omit<AlertRuleBody, "escalation">> {
	id: string;
	builtin: boolean;
	escalation: Escalation | null;
	createdAt: string;
	updatedAt: string;
}

/** One series of a rule whose condition holds now, as the monitor measured it. */
export interface Observation {
	/** Stable id of the series within its rule: its labels, sorted, joined. */
	fingerprint: string;
	labels: Labels;
	value: number;
	/** One line for a person: "3 of 6 terminals went offline within 300 s". */
	summary: string;
}

/**
 * `alert.evaluate`, called by the one monitor that owns the rule, every tick. `active` lists the
 * series whose condition holds now; an open alert of the rule that is not among them has
 * cleared. The call also sends what is due: firing after `for`, reminders, escalation, resolve.
 */
export interface EvaluateParams {
	ruleId: string;
	/** Epoch ms of the measurement. */
	at: number;
	active: Observation[];
}

export const ALERT_STATUSES = ["pending", "firing", "resolved"] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

export interface AlertView {
	id: string;
	ruleId: string;
	ruleName: string;
	status: AlertStatus;
	severity: Severity;
	labels: Labels;
	fingerprint: string;
	value: number;
	summary: string;
	startedAt: string;
	firingAt: string | null;
	resolvedAt: string | null;
	acknowledgedAt: string | null;
	acknowledgedBy: string | null;
	lastNotifiedAt: string | null;
	escalatedAt: string | null;
}

export const NOTIFICATION_KINDS = ["firing", "repeat", "escalation", "resolved", "test"] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export interface NotificationView {
	id: string;
	alertId: string | null;
	channelId: string;
	kind: NotificationKind;
	/** `silenced`: a silence matched, nothing was sent. */
	status: "pending" | "sent" | "failed" | "silenced";
	attempts: number;
	lastError: string | null;
	createdAt: string;
	sentAt: string | null;
}

export const CHANNEL_TYPES = ["webhook", "email", "sms"] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

export interface WebhookConfig {
	url: string;
	/** Signs each delivery (`X-Tern-Signature`); never returned once stored. */
	secret?: string;
	headers?: Record<string, string>;
	/** @defaultValue 5000 */
	timeoutMs?: number;
}

export interface EmailConfig {
	to: string[];
	from?: string;
	host: string;
	port: number;
	/** TLS from the start (465); otherwise STARTTLS when the server offers it. */
	secure?: boolean;
	user?: string;
	/** Never returned once stored. */
	password?: string;
}

/** An HTTP SMS gateway: most SMS providers are an HTTP API that takes a number and a text. */
export interface SmsConfig {
	url: string;
	method?: "POST" | "PUT" | "GET";
	/** Values never returned once stored (they usually hold an API key). */
	headers?: Record<string, string>;
	/** Body with `{{to}}`, `{{text}}`, `{{status}}`, `{{severity}}`, `{{summary}}` replaced; one request per number. */
	body?: string;
	to: string[];
	/** @defaultValue 5000 */
	timeoutMs?: number;
}

export interface ChannelBody {
	name: string;
	type: ChannelType;
	config: WebhookConfig | EmailConfig | SmsConfig;
	enabled?: boolean;
}

/** A channel as the API shows it: secrets as "***". */
export interface ChannelView extends Required<ChannelBody> {
	id: string;
	createdAt: string;
	updatedAt: string;
}

/** `POST /api/silences` */
export interface SilenceBody {
	/** Labels an alert must all carry to be silenced (`{ alertname: "…" }`, `{ terminalId: "t1" }`). */
	matchers: Labels;
	/** ISO time the silence ends. */
	endsAt: string;
	comment?: string;
}

export interface SilenceView extends Required<SilenceBody> {
	id: string;
	createdBy: string | null;
	createdAt: string;
	/** False once ended or expired. */
	active: boolean;
}

/** The webhook body: stable, versioned. */
export interface WebhookPayload {
	version: 1;
	status: "firing" | "resolved";
	kind: NotificationKind;
	alert: AlertView;
	sentAt: string;
}

/** `GET /api/version`: which Tern answers. */
export interface VersionView {
	version: string;
	/** The commit it was built from; null when unknown. */
	commit: string | null;
	mode: "embedded" | "cluster";
	nodeID: string;
}

/** `GET /api/system/status` (design §8, §9). */
export interface SystemStatus {
	version: string;
	mode: "embedded" | "cluster";
	uptimeSeconds: number;
	nodes: { id: string; services: string[]; available: boolean; lastSeenAt: string | null }[];
	terminals: { online: number; offline: number; disabled: number };
	tasks: Record<string, number>;
	rates: { minute: TaskRates; hour: TaskRates };
	alerts: { firing: number };
	/** Phase latencies of the tasks that ended in the last minute, ms (absent parts: no task ended). */
	latency: Partial<Record<"queue" | "start" | "run" | "total", PhaseLatency>>;
	/** Parts whose service did not answer (`terminals`, `tasks`, `alerts`): their numbers read zero. */
	unavailable: string[];
	/** True while any dispatcher runs in degraded mode (its database unreachable). */
	degraded: boolean;
	/** Why, when degraded: the first degraded dispatcher's reason. */
	degradedReason: string | null;
	/** Each dispatcher's storage. */
	storage: NodeStorage[];
}

export interface PhaseLatency {
	p50: number;
	p95: number;
	p99: number;
	count: number;
}

export interface TaskRates {
	submitted: number;
	completed: number;
	failed: number;
	timedOut: number;
}

/** `dispatcher.stats`: tasks by status, and when the oldest PENDING one was created (epoch ms). */
export interface DispatcherStats {
	tasks: Record<string, number>;
	oldestPendingAt: number | null;
}

/** `terminals.summary` */
export interface FleetSummary {
	online: number;
	offline: number;
	disabled: number;
	/** Enabled terminals labelled `critical: "true"` that are offline, and since when (epoch ms). */
	criticalOffline: { id: string; since: number }[];
}

/**
 * Settings that `PUT /api/system/config` may change while Tern runs, with their ranges. Each is
 * applied at once by every node that uses it (a `config.changed` broadcast), kept in the database,
 * and announced again to every node that joins.
 */
export const RUNTIME_SETTINGS = {
	/** REST requests per second per client address; 0 turns the limit off (only when a limit was set at start). */
	rateLimit: { min: 0, max: 1_000_000, services: ["api"] },
	/** Largest result output, bytes (up to the socket message limit fixed at start). */
	maxResultBytes: { min: 1, max: 64 * 1024 * 1024, services: ["dispatcher", "gateway"] },
	/** How often the monitor judges the alert rules, ms. */
	evaluateInterval: { min: 100, max: 3_600_000, services: ["monitor"] },
	/** Tasks that must end within a rate rule's window before it is judged. */
	minTasksForRate: { min: 1, max: 1_000_000, services: ["monitor"] }
} as const;
export type RuntimeSettingName = keyof typeof RUNTIME_SETTINGS;
export type RuntimeSettings = Partial<Record<RuntimeSettingName, number>>;

/** `config.changed` */
export interface ConfigChangedEvent {
	settings: RuntimeSettings;
}

/** `GET /api/system/config` */
export interface SystemConfigView {
	nodeID: string;
	/** The node's configuration as it started, secrets as "***". */
	config: Record<string, unknown>;
	/** The settings changeable at run time, as they are now. */
	runtime: RuntimeSettings;
}
