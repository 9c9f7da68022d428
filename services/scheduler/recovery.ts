/**
 * Stale claims: a fire claimed by a replica that died (or failed) before settling it is
 * completed by the job's owner, with the same idempotency key, so it still creates one task.
 */
import type { Logger } from "moleculer";
import type { Firer } from "./firing.ts";
import { eachLimited } from "./limit.ts";
import type { JobStore } from "./store.ts";
import type { ArmedJob } from "./types.ts";

/** Stale claims read at once. */
const PAGE = 100;

export async function completeStaleClaims(deps: {
	store: JobStore;
	firer: Firer;
	logger: Logger;
	staleBefore: number;
	concurrency: number;
	owns: (jobId: string) => boolean;
	jobOf: (jobId: string) => Promise<ArmedJob | null>;
}): Promise<void> {
	const { store, firer, logger } = deps;
	for (;;) {
		const stale = await store.staleClaims(deps.staleBefore, PAGE);
		const byJob = new Map<string, typeof stale>();
		for (const claim of stale) if (deps.owns(claim.jobId)) byJob.set(claim.jobId, [...(byJob.get(claim.jobId) ?? []), claim]);
		let completed = 0;
		// A replica killed mid-batch leaves hundreds: jobs side by side, each job's claims in turn.
		await eachLimited([...byJob.values()], deps.concurrency, async claims => {
			const job = await deps.jobOf(claims[0].jobId);
			if (!job) return;
			for (const claim of claims) {
				logger.info(`Completing the stale claim of job ${job.row.id} at ${new Date(claim.fireTime).toISOString()}`);
				await firer
					.complete(job, claim.fireTime, "FIRED", "completed after its first claimant stopped", claim.manual)
					.then(
						() => completed++,
						err => logger.warn(`Stale claim of job ${job.row.id} not completed yet: ${(err as Error).message}`)
					);
			}
		});
		// A full page may hide more of ours behind it; go on while that gets somewhere.
		if (stale.length < PAGE || completed === 0) break;
	}
}
