// The JavaScript entry of the language matrix: run as a script by Rhino's shell.
var name = arguments.length > 0 ? String(arguments[0]) : "nobody";
var env = java.lang.System.getenv("GREETING");
var greeting = env !== null ? String(env) : "Hi";
var greet = function (who) { return greeting + ", " + who + "!"; };

var fruits = ["pear", "fig", "banana", "apple", "kiwi"];
var kept = fruits
  .filter(function (f) { return f.length > 3; })
  .map(function (f) { return f.toUpperCase(); })
  .sort();
var total = kept.reduce(function (sum, f) { return sum + f.length; }, 0);

print(greet(name) + " (JavaScript)");
print("fruits: " + kept.join(", "));
print(java.lang.String.format("average length: %.2f", new java.lang.Double(total / kept.length)));
java.lang.System.err.println("JavaScript: exiting with status 3");
quit(3);
