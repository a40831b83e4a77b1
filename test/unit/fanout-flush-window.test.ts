import { describe, expect, it } from "vitest";
import { FlushWindow } from "../../src/server/fanout/flush-window.js";

describe("FlushWindow", () => {
  it("doubles while the fan-out is busy, up to the maximum, and remembers the widest", () => {
    const w = new FlushWindow(10, 250);
    expect(w.currentMs).toBe(10);
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) {
      w.observe(true, 0);
      seen.push(w.currentMs);
    }
    expect(seen).toEqual([20, 40, 80, 160, 250, 250, 250]);
    expect(w.widestMs).toBe(250);
  });

  it("widens when the timer fires late (a busy event loop) and not for a little jitter", () => {
    const w = new FlushWindow(10, 100);
    w.observe(false, 4);
    expect(w.currentMs).toBe(10);
    w.observe(false, 30);
    expect(w.currentMs).toBe(20);
    w.observe(false, 9); // half of 20 is 10: on time
    expect(w.currentMs).toBe(10);
  });

  it("halves back to the base window once idle, never below it", () => {
    const w = new FlushWindow(10, 400);
    for (let i = 0; i < 5; i++) w.observe(true, 0);
    expect(w.currentMs).toBe(320);
    const back: number[] = [];
    for (let i = 0; i < 7; i++) {
      w.observe(false, 0);
      back.push(w.currentMs);
    }
    expect(back).toEqual([160, 80, 40, 20, 10, 10, 10]);
    expect(w.widestMs).toBe(320);
  });

  it("with a zero base window, widens from 1 ms", () => {
    const w = new FlushWindow(0, 8);
    w.observe(true, 0);
    expect(w.currentMs).toBe(1);
    w.observe(true, 0);
    expect(w.currentMs).toBe(2);
    expect(new FlushWindow(50, 10).maxMs).toBe(50);
  });
});
