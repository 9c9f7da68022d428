/**
 * The gate in front of terminal handshakes: at most `admitConcurrency` being verified at once and
 * `admitRate` let in per second, so that thousands of terminals reconnecting together (a gateway
 * restarted) are admitted at a pace the cluster takes, rather than all asking auth and the
 * dispatchers at once. Past either limit a handshake is refused at once, before any work, with
 * GATEWAY_BUSY and `retryAfterMs`: those refused in one second are spread over the seconds after
 * it, at most `admitRate` each, with jitter, so the crowd comes back in waves the gate can take.
 * While the gateway is cut off from the cluster every handshake is refused so.
 */
import { Errors } from "../../lib/errors.ts";

export interface GateLimits {
	/** Handshakes verified at once at most; 0: no limit. */
	admitConcurrency: number;
	/** Handshakes let in per second at most; 0: no limit. */
	admitRate: number;
}

export interface GateClock {
	/** @defaultValue Date.now */
	now?: () => number;
	/** A number in [0, 1). @defaultValue Math.random */
	random?: () => number;
}

const SECOND = 1000;
/** The least a refused handshake is asked to wait. */
const MIN_RETRY_MS = 100;

export type GateRefusal = "busy" | "partition";

export class AdmissionGate {
	private readonly limits: GateLimits;
	private readonly now: () => number;
	private readonly random: () => number;
	private active = 0;
	private windowStart = Number.NEGATIVE_INFINITY;
	private admitted = 0;
	private refused = 0;
	/** Cut off from the cluster, and how long to tell terminals to wait. */
	private cutOff: { retryAfterMs: number } | null = null;
	/** Every refusal, by why (for the metrics). */
	onRefused: (reason: GateRefusal) => void = () => undefined;

	constructor(limits: GateLimits, clock: GateClock = {}) {
		this.limits = limits;
		this.now = clock.now ?? Date.now;
		this.random = clock.random ?? Math.random;
	}

	/** Handshakes being verified now. */
	get inFlight(): number {
		return this.active;
	}

	/** Lets a handshake through: call the function returned when it is done. Throws GATEWAY_BUSY past a limit. */
	enter(): () => void {
		if (this.cutOff) {
			this.onRefused("partition");
			throw Errors.gatewayBusy(this.jitter(this.cutOff.retryAfterMs), "partition");
		}
		const now = this.now();
		if (now - this.windowStart >= SECOND) {
			this.windowStart = now;
			this.admitted = this.refused = 0;
		}
		const { admitConcurrency, admitRate } = this.limits;
		const full = admitConcurrency > 0 && this.active >= admitConcurrency;
		if (full || (admitRate > 0 && this.admitted >= admitRate)) {
			// The n-th refused of this second comes back in the (n / rate)-th second after it.
			const waves = admitRate > 0 ? Math.floor(this.refused / admitRate) : 0;
			this.refused++;
			this.onRefused("busy");
			throw Errors.gatewayBusy(this.jitter(this.windowStart + SECOND - now + waves * SECOND), "busy");
		}
		this.admitted++;
		this.active++;
		let released = false;
		return () => {
			if (released) return;
			released = true;
			this.active--;
		};
	}

	/** Cut off from the cluster (or back): handshakes are refused meanwhile, to come back after about `retryAfterMs`. */
	partitioned(retryAfterMs: number | null): void {
		this.cutOff = retryAfterMs === null ? null : { retryAfterMs };
	}

	/** `base` or up to half again, whole ms, never under MIN_RETRY_MS. */
	private jitter(base: number): number {
		const at = Math.max(MIN_RETRY_MS, base);
		return Math.round(at + this.random() * at * 0.5);
	}
}
