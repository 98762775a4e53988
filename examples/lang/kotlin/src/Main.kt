// The Kotlin entry of the language matrix, compiled with kotlinc and run with kotlin-stdlib.
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    val name = args.firstOrNull() ?: "nobody"
    val greeting = System.getenv("GREETING") ?: "Hi"
    val greet = { who: String -> "$greeting, $who!" }

    val fruits = listOf("pear", "fig", "banana", "apple", "kiwi")
    val kept = fruits.filter { it.length > 3 }.map { it.toUpperCase() }.sorted()
    val average = kept.map { it.length }.average()

    println(greet(name) + " (Kotlin)")
    println("fruits: " + kept.joinToString(", "))
    println("average length: %.2f".format(average))
    System.err.println("Kotlin: exiting with status 3")
    exitProcess(3)
}
