// The web UI's streamed playback: POST the speech API with stream_format "audio" (pcm) and
// play each piece with the Web Audio API as it arrives, one after the other, so the first
// sentence is heard while the rest is still being made. `window.voxfleetLastStream` keeps
// what happened (for people debugging, and the browser test).
window.voxfleetSpeakStreamed = async (model, text, voice, speed) => {
  const started = performance.now();
  const state = { done: false, firstAudioMs: null, totalMs: null, samples: 0, pieces: 0, rate: 0, error: null };
  window.voxfleetLastStream = state;
  try {
    const response = await fetch("/v1/audio/speech", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model, input: text, voice, speed, response_format: "pcm", stream_format: "audio" }),
    });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try {
        const { error } = await response.json();
        message = `${error.param ? `${error.param}: ` : ""}${error.message}`;
      } catch (ignored) { /* not our JSON error: the status says it */ }
      throw new Error(message);
    }
    const rate = Number(response.headers.get("X-Sample-Rate"));
    const context = new AudioContext({ sampleRate: rate });
    const reader = response.body.getReader();
    let playAt = context.currentTime + 0.05;
    let carry = new Uint8Array(0); // an odd byte left over between pieces: half a sample
    state.rate = rate;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = new Uint8Array(carry.length + value.length);
      bytes.set(carry);
      bytes.set(value, carry.length);
      const whole = bytes.length - (bytes.length % 2);
      carry = bytes.slice(whole);
      if (whole === 0) continue;
      const pcm = new Int16Array(bytes.buffer, 0, whole / 2);
      const buffer = context.createBuffer(1, pcm.length, rate);
      const channel = buffer.getChannelData(0);
      for (let i = 0; i < pcm.length; i += 1) channel[i] = pcm[i] / 32768;
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      playAt = Math.max(playAt, context.currentTime);
      source.start(playAt);
      playAt += buffer.duration;
      if (state.firstAudioMs === null) state.firstAudioMs = performance.now() - started;
      state.samples += pcm.length;
      state.pieces += 1;
    }
    state.totalMs = performance.now() - started;
    return `Streamed ${(state.samples / rate).toFixed(1)} s of speech: it began playing after ` +
      `${Math.round(state.firstAudioMs)} ms; the whole answer took ${Math.round(state.totalMs)} ms.`;
  } catch (error) {
    state.error = String(error.message || error);
    return `Streaming failed: ${state.error}`;
  } finally {
    state.done = true;
  }
};
