// The Scala entry of the language matrix, compiled with scalac and run with the Scala library.
object Main {
  def main(args: Array[String]): Unit = {
    val name = args.headOption.getOrElse("nobody")
    val greeting = sys.env.getOrElse("GREETING", "Hi")
    val greet = (who: String) => s"$greeting, $who!"

    val fruits = List("pear", "fig", "banana", "apple", "kiwi")
    val kept = fruits.filter(_.length > 3).map(_.toUpperCase).sorted
    val average = kept.map(_.length).sum.toDouble / kept.size

    println(greet(name) + " (Scala)")
    println("fruits: " + kept.mkString(", "))
    println("average length: %.2f".format(average))
    Console.err.println("Scala: exiting with status 3")
    sys.exit(3)
  }
}
