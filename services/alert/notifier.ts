/**
 * Sending: one `alert_notifications` row per channel and notice, written before the caller goes
 * on; the delivery itself runs in the background, each channel on its own, retried with
 * exponential backoff (`attempts`, `backoffMs`·2^(n−1)). Every attempt is recorded on the row
 * (attempts, lastError, status), so that a failing channel shows in the alert's history and
 * never holds up the others or the evaluation that raised the notice.
 */
import type { AlertMetrics } from "../../lib/metrics/alerts.ts";
import type { Logger } from "moleculer";
import type { AlertRow, ChannelRow, NotificationRow } from "../../models/alert.model.ts";
import type { ChannelType, NotificationKind } from "../../lib/contracts.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Sealer } from "../../lib/secret-box.ts";
import { DeliveryError, resolve } from "./channels/index.ts";
import { statusOf, type Message } from "./templates.ts";
import type { AlertStore } from "./store.ts";
import { toAlertView } from "./views.ts";

export interface NotifierOptions {
	/** Tries per notice. @defaultValue 3 */
	attempts: number;
	/** Wait before the first retry, ms; doubled before each next one. @defaultValue 1000 */
	backoffMs: number;
	/** Counts every attempt (`tern_alert_notifications_total`). */
	metrics?: AlertMetrics;
}

/** The answer of a channel test. */
export interface Outcome {
	ok: boolean;
	status: "sent" | "failed";
	attempts: number;
	error: string | null;
}

export class Notifier {
	private readonly store: AlertStore;
	private readonly box: Sealer;
	private readonly options: NotifierOptions;
	private readonly logger: Logger;
	private readonly inflight = new Set<Promise<unknown>>();
	private readonly waits = new Set<() => void>();
	private stopped = false;

	constructor(store: AlertStore, box: Sealer, options: NotifierOptions, logger: Logger) {
		this.store = store;
		this.box = box;
		this.options = options;
		this.logger = logger;
	}

	/**
	 * Records `kind` of `alert` for each channel — "silenced" when a silence covers it, else
	 * "pending" — and starts the deliveries. Resolves once the rows are written, not sent.
	 */
	async notify(
		alert: AlertRow,
		kind: NotificationKind,
		channels: ChannelRow[],
		silenced: boolean,
		now: number
	): Promise<number> {
		const message: Message = { kind, status: statusOf(kind), alert: toAlertView(alert), sentAt: now };
		for (const channel of channels) {
			const row: NotificationRow = {
				id: uuidv7(now),
				alertId: alert.id,
				channelId: channel.id,
				kind,
				status: silenced ? "silenced" : "pending",
				attempts: 0,
				lastError: null,
				createdAt: now,
				sentAt: null
			};
			await this.store.insertNotification(row);
			if (silenced) this.options.metrics?.notified(channel.type, "silenced");
			if (!silenced) this.track(this.deliver(row, channel, message));
		}
		return channels.length;
	}

	/** Sends `message` through `channel` now and answers how it went (a channel's test). */
	async sendNow(channel: ChannelRow, message: Message): Promise<Outcome> {
		const row: NotificationRow = {
			id: uuidv7(),
			alertId: null,
			channelId: channel.id,
			kind: message.kind,
			status: "pending",
			attempts: 0,
			lastError: null,
			createdAt: message.sentAt,
			sentAt: null
		};
		await this.store.insertNotification(row);
		return this.track(this.deliver(row, channel, message));
	}

	/** Resolves once every delivery started so far has ended (sent or failed for good). */
	async idle(): Promise<void> {
		while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
	}

	/** No more retries: a delivery waiting for one ends as failed. */
	async stop(): Promise<void> {
		this.stopped = true;
		for (const wake of this.waits) wake();
		await this.idle();
	}

	private track<T>(promise: Promise<T>): Promise<T> {
		this.inflight.add(promise);
		void promise.finally(() => this.inflight.delete(promise)).catch(() => {});
		return promise;
	}

	private async deliver(row: NotificationRow, channel: ChannelRow, message: Message): Promise<Outcome> {
		let error = "";
		let attempts = 0;
		try {
			const driver = resolve(channel.type as ChannelType);
			let config = driver.mapSecrets(JSON.parse(channel.config) as object, value => this.box.open(value));
			while (attempts < this.options.attempts && !this.stopped) {
				attempts++;
				try {
					await driver.send(config, message);
					this.options.metrics?.notified(channel.type, "sent");
					await this.store.updateNotification(row.id, {
						status: "sent",
						attempts,
						lastError: null,
						sentAt: Date.now()
					});
					return { ok: true, status: "sent", attempts, error: null };
				} catch (err) {
					error = (err as Error).message;
					this.options.metrics?.notified(channel.type, "failed");
					if (err instanceof DeliveryError && err.retryWith) config = err.retryWith;
					const last = attempts >= this.options.attempts;
					await this.store.updateNotification(row.id, {
						attempts,
						lastError: error,
						...(last ? { status: "failed" } : {})
					});
					if (!last) await this.pause(this.options.backoffMs * 2 ** (attempts - 1));
				}
			}
			if (this.stopped && attempts < this.options.attempts) error = `${error} (stopped before the next try)`.trim();
		} catch (err) {
			error = `The channel's config cannot be read: ${(err as Error).message}`;
		}
		this.logger.warn(
			`Notification ${row.kind} of alert ${row.alertId ?? "-"} through channel '${channel.name}' failed: ${error}`
		);
		await this.store.updateNotification(row.id, { status: "failed", attempts, lastError: error }).catch(() => {});
		return { ok: false, status: "failed", attempts, error };
	}

	/** A wait that stop() cuts short. */
	private pause(ms: number): Promise<void> {
		return new Promise(resolve => {
			const wake = () => {
				clearTimeout(timer);
				this.waits.delete(wake);
				resolve();
			};
			const timer = setTimeout(wake, ms);
			this.waits.add(wake);
		});
	}
}
