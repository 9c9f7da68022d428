/**
 * The alarm's sound, made in the page: a short two-tone beep as a WAV file in a Blob, so that it
 * plays through an ordinary `<audio>` element with nothing fetched from anywhere.
 */
const RATE = 8000;

function wav(samples: Int16Array): Blob {
	const header = new DataView(new ArrayBuffer(44));
	const text = (offset: number, s: string) => [...s].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
	text(0, "RIFF");
	header.setUint32(4, 36 + samples.length * 2, true);
	text(8, "WAVE");
	text(12, "fmt ");
	header.setUint32(16, 16, true);
	header.setUint16(20, 1, true); // PCM
	header.setUint16(22, 1, true); // mono
	header.setUint32(24, RATE, true);
	header.setUint32(28, RATE * 2, true);
	header.setUint16(32, 2, true);
	header.setUint16(34, 16, true);
	text(36, "data");
	header.setUint32(40, samples.length * 2, true);
	return new Blob([header.buffer, samples.buffer as ArrayBuffer], { type: "audio/wav" });
}

/** A beep of `seconds`, alternating two pitches, with soft edges; its object URL. */
export function toneUrl(seconds: number, pitches: [number, number] = [880, 660]): string {
	const n = Math.round(seconds * RATE);
	const samples = new Int16Array(n);
	const half = n / 2;
	for (let i = 0; i < n; i++) {
		const pitch = i < half ? pitches[0] : pitches[1];
		const edge = Math.min(1, i / 400, (n - i) / 400);
		samples[i] = Math.round(Math.sin((2 * Math.PI * pitch * i) / RATE) * 12000 * edge);
	}
	return URL.createObjectURL(wav(samples));
}
