/** A task's body as the submit form and `POST /api/task/submit` take it, from a task's view. */
import type { TaskBody, TaskView } from "../../api/types.ts";

export function bodyOf(task: TaskView): TaskBody {
	const body: TaskBody = {
		type: task.type,
		payload: task.payload,
		priority: task.priority,
		timeout: task.timeout,
		ackTimeout: task.ackTimeout,
		ttl: task.ttl,
		maxRetries: task.maxRetries
	} as TaskBody;
	if (task.selector) body.selector = task.selector;
	else if (task.terminalId) body.terminalId = task.terminalId;
	if (task.backoff) body.backoff = task.backoff;
	return body;
}
