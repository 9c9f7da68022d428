/**
 * The dispatcher's data access. Every state change is a compare-and-set: an UPDATE that names
 * the state (and attempt) it expects, so concurrent actors — a result racing a timeout, two
 * dispatcher replicas — cannot both win. No transactions are needed, which keeps SQLite's
 * single connection free of interleaved BEGINs.
 */
import { Op, type WhereOptions } from "sequelize";
import type { TaskStatus } from "../../lib/contracts.ts";
import type { TaskModel, TaskRow } from "../../models/task.model.ts";

export interface Expect {
	status: TaskStatus | TaskStatus[];
	attempt?: number;
}

export class TaskStore {
	readonly model: TaskModel;

	constructor(model: TaskModel) {
		this.model = model;
	}

	async insert(rows: TaskRow[]): Promise<void> {
		if (rows.length === 1) await this.model.create(rows[0]);
		else await this.model.bulkCreate(rows);
	}

	async get(id: string): Promise<TaskRow | null> {
		return (await this.model.findByPk(id, { raw: true })) as unknown as TaskRow | null;
	}

	async byIdempotencyKey(key: string): Promise<TaskRow | null> {
		return (await this.model.findOne({ where: { idempotencyKey: key }, raw: true })) as unknown as TaskRow | null;
	}

	async byGroup(groupId: string): Promise<TaskRow[]> {
		return (await this.model.findAll({ where: { groupId }, order: [["id", "ASC"]], raw: true })) as unknown as TaskRow[];
	}

	/** Frees an idempotency key whose 24 h are over, so a new task may take it. */
	async releaseKey(id: string, key: string): Promise<void> {
		await this.model.update({ idempotencyKey: null }, { where: { id, idempotencyKey: key } });
	}

	/** Applies `changes` only if the task is still as expected; true when it was. */
	async transition(id: string, expect: Expect, changes: Partial<TaskRow>): Promise<boolean> {
		const where: Record<string, unknown> = {
			id,
			status: Array.isArray(expect.status) ? { [Op.in]: expect.status } : expect.status
		};
		if (expect.attempt !== undefined) where.attempt = expect.attempt;
		const [count] = await this.model.update(changes, { where: where as WhereOptions<TaskRow> });
		return count === 1;
	}

	/** PENDING tasks named for this terminal and due now, highest priority first, FIFO within one. */
	async pendingPinned(terminalId: string, now: number, limit: number): Promise<TaskRow[]> {
		return (await this.model.findAll({
			where: {
				status: "PENDING",
				target: terminalId,
				[Op.or]: [{ notBefore: null }, { notBefore: { [Op.lte]: now } }]
			},
			order: [
				["priority", "DESC"],
				["id", "ASC"]
			],
			limit,
			raw: true
		})) as unknown as TaskRow[];
	}

	/** PENDING selector tasks due now, in queue order. */
	async pendingUnassigned(now: number, limit: number): Promise<TaskRow[]> {
		return (await this.model.findAll({
			where: {
				status: "PENDING",
				target: null,
				[Op.or]: [{ notBefore: null }, { notBefore: { [Op.lte]: now } }]
			},
			order: [
				["priority", "DESC"],
				["id", "ASC"]
			],
			limit,
			raw: true
		})) as unknown as TaskRow[];
	}

	/** Terminals that have pinned PENDING tasks due now. */
	async terminalsWithPending(now: number): Promise<string[]> {
		const rows = (await this.model.findAll({
			attributes: ["target"],
			where: {
				status: "PENDING",
				target: { [Op.ne]: null },
				[Op.or]: [{ notBefore: null }, { notBefore: { [Op.lte]: now } }]
			},
			group: ["target"],
			raw: true
		})) as unknown as { target: string }[];
		return rows.map(r => r.target);
	}

	/** Tasks each terminal holds now (DELIVERED or PROCESSING). */
	async inflight(terminalIds: string[]): Promise<Map<string, number>> {
		const counts = new Map(terminalIds.map(id => [id, 0]));
		if (terminalIds.length === 0) return counts;
		const rows = (await this.model.findAll({
			attributes: ["terminalId", [this.model.sequelize!.fn("COUNT", "*"), "n"]],
			where: { terminalId: { [Op.in]: terminalIds }, status: { [Op.in]: ["DELIVERED", "PROCESSING"] } },
			group: ["terminalId"],
			raw: true
		})) as unknown as { terminalId: string; n: number | string }[];
		for (const row of rows) counts.set(row.terminalId, Number(row.n));
		return counts;
	}

	/** Tasks in `status` whose `column` time has come. */
	async due(
		status: TaskStatus,
		column: "deadlineAt" | "expiresAt" | "notBefore",
		now: number,
		limit: number
	): Promise<TaskRow[]> {
		return (await this.model.findAll({
			where: { status, [column]: { [Op.lte]: now } } as WhereOptions<TaskRow>,
			order: [[column, "ASC"]],
			limit,
			raw: true
		})) as unknown as TaskRow[];
	}

	/** DELIVERED tasks of a terminal, optionally only those delivered before `before`. */
	async delivered(terminalId: string, before?: number): Promise<TaskRow[]> {
		const where: Record<string, unknown> = { terminalId, status: "DELIVERED" };
		if (before !== undefined) where.deliveredAt = { [Op.lt]: before };
		return (await this.model.findAll({ where: where as WhereOptions<TaskRow>, raw: true })) as unknown as TaskRow[];
	}

	async allDelivered(limit: number): Promise<TaskRow[]> {
		return (await this.model.findAll({ where: { status: "DELIVERED" }, limit, raw: true })) as unknown as TaskRow[];
	}

	async page(where: WhereOptions<TaskRow>, offset: number, limit: number, order: [string, "ASC" | "DESC"][]) {
		const { rows, count } = await this.model.findAndCountAll({ where, offset, limit, order, raw: true });
		return { rows: rows as unknown as TaskRow[], total: count };
	}

	async countByStatus(): Promise<Record<string, number>> {
		const rows = (await this.model.findAll({
			attributes: ["status", [this.model.sequelize!.fn("COUNT", "*"), "n"]],
			group: ["status"],
			raw: true
		})) as unknown as { status: string; n: number | string }[];
		return Object.fromEntries(rows.map(r => [r.status, Number(r.n)]));
	}
}
