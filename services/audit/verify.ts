/**
 * `audit.verify`: every chain walked in seq order, a page at a time, each row checked against
 * its content and the row before it (services/audit/chain.ts). The writer's own head, when it
 * has one, anchors its chain's end: rows removed from the end of this node's chain since it last
 * wrote are found too. Other chains' ends are not anchored (see docs/security/audit.md).
 */
import type { AuditVerification } from "../../lib/contracts.ts";
import { ChainCheck, type ChainHead } from "./chain.ts";
import type { AuditStore } from "./store.ts";

const PAGE = 1000;

export async function verifyLog(
	store: AuditStore,
	anchor: { chain: string; head: ChainHead | null } | null,
	page = PAGE
): Promise<AuditVerification> {
	// The anchor is read before the walk: rows committed meanwhile only make the chain longer.
	const anchored = anchor?.head ? { chain: anchor.chain, seq: anchor.head.seq } : null;
	let checked = 0;
	const chains = await store.chains();
	for (const chain of chains) {
		const check = new ChainCheck(chain);
		for (let after = 0; ;) {
			const rows = await store.chainPage(chain, after, page);
			const bad = check.feed(rows);
			if (bad) return { ok: false, checked: checked + check.checked, firstBadId: bad.id, reason: bad.reason };
			if (rows.length < page) break;
			after = rows[rows.length - 1]!.seq;
		}
		checked += check.checked;
		if (anchored?.chain === chain && check.checked < anchored.seq)
			return truncated(checked, chain, check.checked, anchored.seq);
	}
	if (anchored && anchored.seq > 0 && !chains.includes(anchored.chain))
		return truncated(checked, anchored.chain, 0, anchored.seq);
	return { ok: true, checked, firstBadId: null, reason: null };
}

function truncated(checked: number, chain: string, last: number, written: number): AuditVerification {
	return {
		ok: false,
		checked,
		firstBadId: null,
		reason: `chain '${chain}' ends at seq ${last}, but this node wrote up to seq ${written}: rows were removed from its end`
	};
}
