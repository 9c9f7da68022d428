/**
 * What an earlier agent on the same data directory left in the ledger: results still to send
 * stay in the outbox; a task it had received but not started is dropped (Tern hands it out
 * again); a task it was running when it died is ended — its process group killed if it is still
 * the same process — and reported FAILED, never run a second time.
 */
import { processStart, signalGroup, terminateGroup } from "../runners/base.ts";
import type { Ledger } from "./ledger.ts";
import type { Logger } from "./log.ts";

export function recoverLeftOver(ledger: Ledger, killGraceMs: number, log: Logger): void {
	for (const entry of ledger.leftOver) {
		if (entry.state === "done") continue; // in the outbox: sent once connected
		if (entry.state === "received") {
			ledger.put({ ...entry, state: "dropped", note: "the agent stopped before it started; Tern hands it out again" });
			continue;
		}
		// "running": the agent died under it. Whatever of it still runs is ended; it is not run again.
		if (entry.pgid && entry.procStart && processStart(entry.pgid) === entry.procStart) {
			log.warn(
				`Task ${entry.taskId} (attempt ${entry.attempt}) left running by an earlier agent: killing its process group ${entry.pgid}`
			);
			terminateGroup(entry.pgid, killGraceMs);
		} else if (entry.pgid) signalGroup(entry.pgid, "SIGKILL");
		ledger.put({
			...entry,
			state: "done",
			result: {
				taskId: entry.taskId,
				attempt: entry.attempt,
				status: "failed",
				error: "The agent stopped while the task ran; it was not run again"
			}
		});
	}
	const held = ledger.outbox().length;
	if (held > 0) log.info(`${held} result(s) held from before: sent once connected`);
}
