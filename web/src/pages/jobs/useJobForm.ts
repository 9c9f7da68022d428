/**
 * The job form's state: a job's fields as inputs, the body the API takes, and the preview of
 * the next fire times, asked of the API (which checks the schedule) a moment after each change.
 */
import { computed, reactive, ref, watch } from "vue";
import { api } from "../../api/client.ts";
import type { TaskBody } from "../../api/types.ts";
import type { JobView, Preview, Schedule } from "./types.ts";

export type Kind = "cron" | "every" | "delayAfterFinish" | "at";

export function useJobForm() {
	const form = reactive({
		name: "",
		kind: "cron" as Kind,
		cron: "0 */5 * * * *",
		timezone: Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC",
		every: 60,
		delay: 60,
		at: "",
		misfirePolicy: "skip" as JobView["misfirePolicy"],
		overlapPolicy: "allow" as JobView["overlapPolicy"],
		startAt: "",
		endAt: "",
		enabled: true,
		terminalId: "",
		labels: "",
		type: "",
		payload: "{}",
		timeout: 300,
		maxRetries: 0
	});
	const preview = ref<Preview | null>(null);
	const previewError = ref<unknown>(null);

	const iso = (local: string) => (local ? new Date(local).toISOString() : null);
	const local = (at: string | null) =>
		at ? new Date(new Date(at).getTime() - new Date(at).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "";

	const schedule = computed((): Schedule => {
		switch (form.kind) {
			case "cron":
				return form.timezone ? { cron: form.cron, timezone: form.timezone } : { cron: form.cron };
			case "every":
				return { every: Math.round(Number(form.every) * 1000) };
			case "delayAfterFinish":
				return { delayAfterFinish: Math.round(Number(form.delay) * 1000) };
			default:
				return { at: iso(form.at) ?? "" };
		}
	});

	function task(): TaskBody {
		const body: TaskBody = {
			type: form.type.trim(),
			payload: JSON.parse(form.payload || "null") as unknown,
			timeout: Number(form.timeout),
			maxRetries: Number(form.maxRetries)
		};
		if (form.terminalId.trim()) body.terminalId = form.terminalId.trim();
		else
			body.selector = {
				labels: Object.fromEntries(
					form.labels
						.split(",")
						.map(pair => pair.trim().split("="))
						.filter(([key]) => key)
						.map(([key, value]) => [key!.trim(), (value ?? "").trim()])
				)
			};
		return body;
	}

	function body() {
		return {
			name: form.name.trim(),
			schedule: schedule.value,
			task: task(),
			misfirePolicy: form.misfirePolicy,
			overlapPolicy: form.overlapPolicy,
			startAt: iso(form.startAt),
			endAt: iso(form.endAt),
			enabled: form.enabled
		};
	}

	function adopt(job: JobView): void {
		const s = job.schedule;
		Object.assign(form, {
			name: job.name,
			kind: ("cron" in s ? "cron" : "every" in s ? "every" : "delayAfterFinish" in s ? "delayAfterFinish" : "at") as Kind,
			...("cron" in s ? { cron: s.cron, timezone: s.timezone ?? "" } : {}),
			...("every" in s ? { every: s.every / 1000 } : {}),
			...("delayAfterFinish" in s ? { delay: s.delayAfterFinish / 1000 } : {}),
			...("at" in s ? { at: local(s.at) } : {}),
			misfirePolicy: job.misfirePolicy,
			overlapPolicy: job.overlapPolicy,
			startAt: local(job.startAt),
			endAt: local(job.endAt),
			enabled: job.enabled,
			terminalId: job.task.terminalId ?? "",
			labels: Object.entries(job.task.selector?.labels ?? {})
				.map(([k, v]) => `${k}=${v}`)
				.join(", "),
			type: job.task.type,
			payload: JSON.stringify(job.task.payload ?? {}, null, 2),
			timeout: job.task.timeout ?? 300,
			maxRetries: job.task.maxRetries ?? 0
		});
	}

	let timer: ReturnType<typeof setTimeout> | undefined;
	let asked = 0;
	watch(
		() => [schedule.value, form.startAt, form.endAt],
		() => {
			clearTimeout(timer);
			timer = setTimeout(async () => {
				const ticket = ++asked;
				try {
					const answer = await api.post<Preview>("/jobs/preview", {
						schedule: schedule.value,
						startAt: iso(form.startAt),
						endAt: iso(form.endAt),
						count: 5
					});
					if (ticket !== asked) return;
					preview.value = answer;
					previewError.value = null;
				} catch (err) {
					if (ticket !== asked) return;
					preview.value = null;
					previewError.value = err;
				}
			}, 300);
		},
		{ immediate: true, deep: true }
	);

	return { form, preview, previewError, body, adopt };
}
