/**
 * Following tasks live over socket.io `/client`: one connection per client, opened on the first
 * `follow`, shared by every task followed. Tern answers a `subscribe` with the task's current
 * status and then sends each change, so after a reconnect each task is subscribed again and
 * nothing is missed between the two connections: the first event says where the task stands.
 */
import { io, type Socket } from "socket.io-client";
import type { TaskProgressEvent, TaskStatusEvent } from "../lib/contracts.ts";
import { TernError, errorFrom, type ErrorPayload } from "./errors.ts";

export interface FollowHandlers {
	/** The current status on subscribe (and again after a reconnect), then every change. */
	status?: (event: TaskStatusEvent) => void;
	/** A progress report or log line of the running attempt. */
	progress?: (event: TaskProgressEvent) => void;
	/** The connection was refused for good (a token revoked, say). */
	error?: (error: TernError) => void;
}

export interface Following {
	/** Stops these handlers; the task is unsubscribed once no one follows it. */
	close(): void;
}

type Reply = { ok: true } | { ok: false; error: ErrorPayload };

export class Follower {
	private readonly socket: Socket;
	private readonly followers = new Map<string, Set<FollowHandlers>>();
	private connectedBefore = false;

	constructor(url: string, token: () => string | null) {
		this.socket = io(`${url}/client`, {
			auth: callback => callback({ token: token() }),
			transports: ["websocket"]
		});
		this.socket.on("connect", () => {
			// The first connection sends the subscribes buffered while it opened; a reconnection repeats them.
			if (this.connectedBefore) for (const taskId of this.followers.keys()) this.socket.emit("subscribe", { taskId });
			this.connectedBefore = true;
		});
		this.socket.on("connect_error", (err: Error & { data?: ErrorPayload }) => {
			// socket.io gives up on a connection the server refused; a network error is retried.
			if (this.socket.active) return;
			const error = errorFrom(err.data?.code ?? 401, err.data ?? { message: err.message, type: "UNAUTHORIZED" });
			for (const handlers of this.followers.values()) for (const handler of handlers) handler.error?.(error);
		});
		this.socket.on("status", (event: TaskStatusEvent) => this.each(event.taskId, h => h.status?.(event)));
		this.socket.on("progress", (event: TaskProgressEvent) => this.each(event.taskId, h => h.progress?.(event)));
	}

	/**
	 * Subscribes to `taskId`. The handlers are in place before the request goes out, since the
	 * current status follows right behind the answer; they are taken out again if it is refused.
	 */
	async follow(taskId: string, handlers: FollowHandlers): Promise<Following> {
		let set = this.followers.get(taskId);
		if (!set) this.followers.set(taskId, (set = new Set()));
		set.add(handlers);
		const close = () => {
			set.delete(handlers);
			if (set.size > 0 || this.followers.get(taskId) !== set) return;
			this.followers.delete(taskId);
			if (this.socket.connected) this.socket.emit("unsubscribe", { taskId });
		};
		try {
			const reply = await this.subscribe(taskId);
			if (!reply.ok) throw errorFrom(reply.error.code ?? 422, reply.error);
		} catch (err) {
			close();
			throw err;
		}
		return { close };
	}

	close(): void {
		this.followers.clear();
		this.socket.close();
	}

	/** The server's answer to a subscribe (sent once connected), or the refusal of the connection. */
	private subscribe(taskId: string): Promise<Reply> {
		return new Promise((resolve, reject) => {
			const refused = (err: Error & { data?: ErrorPayload }) => {
				if (this.socket.active) return;
				reject(errorFrom(err.data?.code ?? 401, err.data ?? { message: err.message, type: "UNAUTHORIZED" }));
			};
			this.socket.once("connect_error", refused);
			this.socket.emit("subscribe", { taskId }, (reply: Reply) => {
				this.socket.off("connect_error", refused);
				resolve(reply);
			});
		});
	}

	private each(taskId: string, run: (handlers: FollowHandlers) => void): void {
		for (const handlers of this.followers.get(taskId) ?? []) run(handlers);
	}
}
