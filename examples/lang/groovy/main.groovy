// The Groovy entry of the language matrix: run as a script by groovy.ui.GroovyMain.
def name = args ? args[0] : "nobody"
def greeting = System.getenv("GREETING") ?: "Hi"
def greet = { who -> "$greeting, $who!" }

def fruits = ["pear", "fig", "banana", "apple", "kiwi"]
def kept = fruits.findAll { it.size() > 3 }.collect { it.toUpperCase() }.sort()
def average = kept.sum { it.size() } / kept.size()

println "${greet(name)} (Groovy)"
println "fruits: ${kept.join(', ')}"
println String.format("average length: %.2f", average as double)
System.err.println "Groovy: exiting with status 3"
System.exit(3)
