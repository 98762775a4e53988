/**
 * A JIT stress load: every round loads a fresh copy of this class (its own class loader), so its
 * 24 implementations of {@code Op} are interpreted, compiled by C1, replaced by C2 (the C1 code made
 * not entrant while other threads call it), deoptimised when a branch C2 left out is taken, and
 * unloaded with their loader a few rounds later. Calls go through an interface with 24 receivers
 * (megamorphic: no inlining), three receivers at a time, from several threads at once; a long loop in {@code spin} is compiled
 * on stack replacement.
 */
public final class Work implements Main.Task {
    interface Op {
        long f(long x, int phase);
    }

    static final class Op0 implements Op {
        public long f(long x, int phase) {
            long y = x * 3L + 0;
            if (phase == 0 && (x & 0xff) == 0x00) { y ^= Long.rotateLeft(x, 1); }
            return (y ^ (y >>> 5)) + phase;
        }
    }

    static final class Op1 implements Op {
        public long f(long x, int phase) {
            long y = x * 5L + 1;
            if (phase == 1 && (x & 0xff) == 0x01) { y ^= Long.rotateLeft(x, 2); }
            return (y ^ (y >>> 6)) + phase;
        }
    }

    static final class Op2 implements Op {
        public long f(long x, int phase) {
            long y = x * 7L + 2;
            if (phase == 2 && (x & 0xff) == 0x02) { y ^= Long.rotateLeft(x, 3); }
            return (y ^ (y >>> 7)) + phase;
        }
    }

    static final class Op3 implements Op {
        public long f(long x, int phase) {
            long y = x * 9L + 3;
            if (phase == 0 && (x & 0xff) == 0x03) { y ^= Long.rotateLeft(x, 4); }
            return (y ^ (y >>> 8)) + phase;
        }
    }

    static final class Op4 implements Op {
        public long f(long x, int phase) {
            long y = x * 11L + 4;
            if (phase == 1 && (x & 0xff) == 0x04) { y ^= Long.rotateLeft(x, 5); }
            return (y ^ (y >>> 9)) + phase;
        }
    }

    static final class Op5 implements Op {
        public long f(long x, int phase) {
            long y = x * 13L + 5;
            if (phase == 2 && (x & 0xff) == 0x05) { y ^= Long.rotateLeft(x, 6); }
            return (y ^ (y >>> 10)) + phase;
        }
    }

    static final class Op6 implements Op {
        public long f(long x, int phase) {
            long y = x * 15L + 6;
            if (phase == 0 && (x & 0xff) == 0x06) { y ^= Long.rotateLeft(x, 7); }
            return (y ^ (y >>> 11)) + phase;
        }
    }

    static final class Op7 implements Op {
        public long f(long x, int phase) {
            long y = x * 17L + 7;
            if (phase == 1 && (x & 0xff) == 0x07) { y ^= Long.rotateLeft(x, 8); }
            return (y ^ (y >>> 12)) + phase;
        }
    }

    static final class Op8 implements Op {
        public long f(long x, int phase) {
            long y = x * 19L + 8;
            if (phase == 2 && (x & 0xff) == 0x08) { y ^= Long.rotateLeft(x, 9); }
            return (y ^ (y >>> 13)) + phase;
        }
    }

    static final class Op9 implements Op {
        public long f(long x, int phase) {
            long y = x * 21L + 9;
            if (phase == 0 && (x & 0xff) == 0x09) { y ^= Long.rotateLeft(x, 10); }
            return (y ^ (y >>> 14)) + phase;
        }
    }

    static final class Op10 implements Op {
        public long f(long x, int phase) {
            long y = x * 23L + 10;
            if (phase == 1 && (x & 0xff) == 0x0a) { y ^= Long.rotateLeft(x, 11); }
            return (y ^ (y >>> 15)) + phase;
        }
    }

    static final class Op11 implements Op {
        public long f(long x, int phase) {
            long y = x * 25L + 11;
            if (phase == 2 && (x & 0xff) == 0x0b) { y ^= Long.rotateLeft(x, 12); }
            return (y ^ (y >>> 16)) + phase;
        }
    }

    static final class Op12 implements Op {
        public long f(long x, int phase) {
            long y = x * 27L + 12;
            if (phase == 0 && (x & 0xff) == 0x0c) { y ^= Long.rotateLeft(x, 13); }
            return (y ^ (y >>> 17)) + phase;
        }
    }

    static final class Op13 implements Op {
        public long f(long x, int phase) {
            long y = x * 29L + 13;
            if (phase == 1 && (x & 0xff) == 0x0d) { y ^= Long.rotateLeft(x, 14); }
            return (y ^ (y >>> 5)) + phase;
        }
    }

    static final class Op14 implements Op {
        public long f(long x, int phase) {
            long y = x * 31L + 14;
            if (phase == 2 && (x & 0xff) == 0x0e) { y ^= Long.rotateLeft(x, 15); }
            return (y ^ (y >>> 6)) + phase;
        }
    }

    static final class Op15 implements Op {
        public long f(long x, int phase) {
            long y = x * 33L + 15;
            if (phase == 0 && (x & 0xff) == 0x0f) { y ^= Long.rotateLeft(x, 16); }
            return (y ^ (y >>> 7)) + phase;
        }
    }

    static final class Op16 implements Op {
        public long f(long x, int phase) {
            long y = x * 35L + 16;
            if (phase == 1 && (x & 0xff) == 0x10) { y ^= Long.rotateLeft(x, 17); }
            return (y ^ (y >>> 8)) + phase;
        }
    }

    static final class Op17 implements Op {
        public long f(long x, int phase) {
            long y = x * 37L + 17;
            if (phase == 2 && (x & 0xff) == 0x11) { y ^= Long.rotateLeft(x, 18); }
            return (y ^ (y >>> 9)) + phase;
        }
    }

    static final class Op18 implements Op {
        public long f(long x, int phase) {
            long y = x * 39L + 18;
            if (phase == 0 && (x & 0xff) == 0x12) { y ^= Long.rotateLeft(x, 19); }
            return (y ^ (y >>> 10)) + phase;
        }
    }

    static final class Op19 implements Op {
        public long f(long x, int phase) {
            long y = x * 41L + 19;
            if (phase == 1 && (x & 0xff) == 0x13) { y ^= Long.rotateLeft(x, 20); }
            return (y ^ (y >>> 11)) + phase;
        }
    }

    static final class Op20 implements Op {
        public long f(long x, int phase) {
            long y = x * 43L + 20;
            if (phase == 2 && (x & 0xff) == 0x14) { y ^= Long.rotateLeft(x, 21); }
            return (y ^ (y >>> 12)) + phase;
        }
    }

    static final class Op21 implements Op {
        public long f(long x, int phase) {
            long y = x * 45L + 21;
            if (phase == 0 && (x & 0xff) == 0x15) { y ^= Long.rotateLeft(x, 22); }
            return (y ^ (y >>> 13)) + phase;
        }
    }

    static final class Op22 implements Op {
        public long f(long x, int phase) {
            long y = x * 47L + 22;
            if (phase == 1 && (x & 0xff) == 0x16) { y ^= Long.rotateLeft(x, 23); }
            return (y ^ (y >>> 14)) + phase;
        }
    }

    static final class Op23 implements Op {
        public long f(long x, int phase) {
            long y = x * 49L + 23;
            if (phase == 2 && (x & 0xff) == 0x17) { y ^= Long.rotateLeft(x, 24); }
            return (y ^ (y >>> 15)) + phase;
        }
    }

    private final Op[] ops = { new Op0(), new Op1(), new Op2(), new Op3(), new Op4(), new Op5(), new Op6(), new Op7(), new Op8(), new Op9(), new Op10(), new Op11(), new Op12(), new Op13(), new Op14(), new Op15(), new Op16(), new Op17(), new Op18(), new Op19(), new Op20(), new Op21(), new Op22(), new Op23() };

    @Override
    public long run(int thread, int calls) {
        long sum = thread;
        Op[] o = ops;
        for (int phase = 0; phase < 3; phase++) {
            // Three receivers at a time, all threads on the same three: each method is hot (and
            // replaced by C2, or deoptimised) while the other threads keep calling it.
            for (int g = 0; g < o.length; g += 3) {
                for (int i = 0; i < calls; i++) {
                    sum = o[g + (i + thread) % 3].f(sum + i, phase);
                }
            }
            sum += spin(sum, 20_000 + phase);
        }
        return sum;
    }

    private static long spin(long seed, int n) {
        long s = seed;
        for (int i = 0; i < n; i++) {
            s = s * 6364136223846793005L + 1442695040888963407L;
            if ((s & 0xfffff) == 7) {
                s ^= i;
            }
        }
        return s;
    }
}
