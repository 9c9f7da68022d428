/**
 * A channel body made into a row: its config checked by its type, a "***" secret replaced by the
 * stored one, every secret sealed (AES-256-GCM) before it is written and shown as "***" after.
 */
import type { ChannelRow } from "../../models/alert.model.ts";
import type { ChannelBody, ChannelType, ChannelView } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Keyring } from "../../lib/keyring.ts";
import type { ResealTarget } from "../../lib/resealer.ts";
import type { Sealer } from "../../lib/secret-box.ts";
import { resolve } from "./channels/index.ts";
import type { AlertStore } from "./store.ts";
import { toChannelView } from "./views.ts";

/** The purpose channel secrets are sealed for (see Keyring.seal). */
export const CHANNEL_CONTEXT = "alert-channel";

/**
 * The re-sealing of channel secrets (a handful of rows: one page). A channel's config is JSON
 * with its secrets sealed one by one; the row moves when any of them is on an older key.
 */
export function channelResealTarget(store: AlertStore, keyring: Keyring): ResealTarget {
	const reseal = (config: string, row: ChannelRow) =>
		JSON.stringify(
			resolve(row.type).mapSecrets(JSON.parse(config) as object, value => keyring.reseal(value, CHANNEL_CONTEXT))
		);
	const stale = (row: ChannelRow) => {
		let old = false;
		resolve(row.type).mapSecrets(JSON.parse(row.config) as object, value => {
			if (!keyring.isCurrent(value)) old = true;
			return value;
		});
		return old;
	};
	let rows = new Map<string, ChannelRow>();
	return {
		name: "alert_channels.config",
		async page(after) {
			if (after !== null) return [];
			rows = new Map((await store.channels()).filter(stale).map(row => [row.id, row]));
			return [...rows.values()].map(row => ({ cursor: row.id, value: row.config }));
		},
		reseal(value) {
			return value;
		},
		async write(id, from) {
			const row = rows.get(id);
			const to = row ? reseal(from, row) : from;
			// A PUT meanwhile wrote a config sealed with the active key already: keep it.
			if (!row || (await store.channel(id))?.config !== from) return false;
			return store.updateChannel(id, { config: to });
		}
	};
}

export class ChannelConfigs {
	private readonly box: Sealer;

	constructor(box: Sealer) {
		this.box = box;
	}

	/** The stored config with its secrets opened. */
	plain(row: ChannelRow): object {
		return resolve(row.type).mapSecrets(JSON.parse(row.config) as object, value => this.box.open(value));
	}

	private sealed(type: ChannelType, config: unknown, stored: object | null): string {
		const driver = resolve(type);
		const checked = driver.keepSecrets(driver.check(config), stored);
		return JSON.stringify(driver.mapSecrets(checked, value => this.box.seal(value)));
	}

	newRow(body: ChannelBody, now: number): ChannelRow {
		return {
			id: uuidv7(now),
			name: body.name,
			type: body.type,
			config: this.sealed(body.type, body.config, null),
			enabled: body.enabled ?? true,
			createdAt: now,
			updatedAt: now
		};
	}

	/** A PUT's changes: a new config replaces the old one whole, except for secrets sent back as "***". */
	changes(body: Partial<ChannelBody>, base: ChannelRow, now: number): Partial<ChannelRow> {
		const type = body.type ?? base.type;
		const changes: Partial<ChannelRow> = { updatedAt: now, type };
		if (body.name !== undefined) changes.name = body.name;
		if (body.enabled !== undefined) changes.enabled = body.enabled;
		if (body.config !== undefined)
			changes.config = this.sealed(type, body.config, type === base.type ? this.plain(base) : null);
		else if (type !== base.type) {
			const message = `A channel whose type changes needs its 'config' for type '${type}'`;
			throw Errors.validation(message, [{ type: "required", field: "config", message }]);
		}
		return changes;
	}

	view(row: ChannelRow): ChannelView {
		const driver = resolve(row.type);
		return toChannelView(row, driver.redact(JSON.parse(row.config) as object) as ChannelView["config"]);
	}
}
