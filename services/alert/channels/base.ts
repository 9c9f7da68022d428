/**
 * A notification channel type: how its config is checked, which of its fields are secret, and
 * how a message is delivered. One instance per type serves every channel of that type; the
 * config of the channel at hand is passed to each call.
 */
import Moleculer from "moleculer";
import type { ChannelType } from "../../../lib/contracts.ts";
import { Errors } from "../../../lib/errors.ts";
import type { Message } from "../templates.ts";

/** Shown in every answer in place of a stored secret; sent back in a PUT, it keeps the stored one. */
export const REDACTED = "***";

/** @defaultValue 5000 ms */
export const DEFAULT_TIMEOUT_MS = 5000;

/** A delivery that did not go through: the reason is recorded on the notification. */
export class DeliveryError extends Error {
	override name = "DeliveryError";
	/** The config a retry should use when part of the delivery went through (the SMS numbers still to reach). */
	readonly retryWith?: object;

	constructor(message: string, retryWith?: object) {
		super(message);
		this.retryWith = retryWith;
	}
}

const validator = new Moleculer.Validators.Fastest();

/** A map of header names to values, bounded. */
export const headersRule = {
	type: "record",
	key: { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/ },
	value: { type: "string", max: 4096 },
	optional: true
};

export const timeoutRule = { type: "number", integer: true, min: 100, max: 60_000, optional: true };

export abstract class Channel<C extends object = object> {
	abstract readonly type: ChannelType;
	/** fastest-validator rules of the config's fields. */
	protected abstract readonly schema: Record<string, unknown>;
	/** String fields that hold a secret. */
	protected readonly secretFields: readonly string[] = [];
	/** Map fields whose every value is a secret (headers that carry an API key). */
	protected readonly secretMaps: readonly string[] = [];

	/**
	 * The config, checked; a VALIDATION_ERROR (422) naming `config.<field>` otherwise. A secret
	 * given as "***" passes here and is replaced by the stored one (see withSecrets).
	 */
	check(config: unknown): C {
		validator.validate({ config }, { config: { type: "object", strict: true, props: this.schema }, $$strict: true });
		return config as C;
	}

	/** A copy of `config` with each secret value passed through `fn` (absent ones stay absent). */
	mapSecrets(config: C, fn: (value: string, path: string) => string): C {
		const copy = { ...config } as Record<string, unknown>;
		for (const field of this.secretFields) {
			const value = copy[field];
			if (typeof value === "string") copy[field] = fn(value, field);
		}
		for (const field of this.secretMaps) {
			const map = copy[field] as Record<string, string> | undefined;
			if (map) copy[field] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, fn(v, `${field}.${k}`)]));
		}
		return copy as C;
	}

	/** The config as answers show it: every secret "***". */
	redact(config: C): C {
		return this.mapSecrets(config, () => REDACTED);
	}

	/**
	 * `incoming` with each "***" replaced by the value at the same place in `stored` (plain text):
	 * an edited channel keeps the secrets the client was never shown. A "***" with nothing stored
	 * behind it is refused, naming the field.
	 */
	keepSecrets(incoming: C, stored: C | null): C {
		return this.mapSecrets(incoming, (value, path) => {
			if (value !== REDACTED) return value;
			const previous = stored ? valueAt(stored, path) : undefined;
			if (previous === undefined) {
				const message = `'config.${path}' is "${REDACTED}" but no secret is stored there: send the secret itself`;
				throw Errors.validation(message, [{ type: "secret", field: `config.${path}`, message }]);
			}
			return previous;
		});
	}

	/** Delivers `message`; rejects with a DeliveryError saying why it did not go through. */
	abstract send(config: C, message: Message): Promise<void>;
}

/** The string at `field` or `map.key` of a config. */
function valueAt(config: object, path: string): string | undefined {
	const [field, key] = path.split(/\.(.*)/s, 2);
	const value = (config as Record<string, unknown>)[field];
	if (key === undefined) return typeof value === "string" ? value : undefined;
	const map = value as Record<string, string> | undefined;
	return map && Object.hasOwn(map, key) ? map[key] : undefined;
}

/** A fetch that gives up after `timeoutMs`; any answer but 2xx is a DeliveryError. */
export async function httpSend(url: string, init: RequestInit, timeoutMs: number): Promise<void> {
	let res: Response;
	try {
		res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
	} catch (err) {
		const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
		const reason =
			(err as Error).name === "TimeoutError"
				? `no answer within ${timeoutMs} ms`
				: (cause?.code ?? cause?.message ?? (err as Error).message);
		throw new DeliveryError(`${init.method ?? "GET"} ${new URL(url).origin}: ${reason}`);
	}
	const text = await res.text().catch(() => "");
	if (res.status < 200 || res.status >= 300)
		throw new DeliveryError(
			`${init.method ?? "GET"} ${new URL(url).origin} answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`
		);
}
