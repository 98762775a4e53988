# The Jython entry of the language matrix: run as a script by org.python.util.jython.
import os
import sys

name = sys.argv[1] if len(sys.argv) > 1 else "nobody"
greeting = os.environ.get("GREETING", "Hi")


def make_greeter(salutation):
    return lambda who: "%s, %s!" % (salutation, who)


greet = make_greeter(greeting)
fruits = ["pear", "fig", "banana", "apple", "kiwi"]
kept = sorted(f.upper() for f in fruits if len(f) > 3)
average = float(sum(map(len, kept))) / len(kept)

print("%s (Jython)" % greet(name))
print("fruits: " + ", ".join(kept))
print("average length: %.2f" % average)
sys.stderr.write("Jython: exiting with status 3\n")
sys.exit(3)
