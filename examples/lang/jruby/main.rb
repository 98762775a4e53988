# The JRuby entry of the language matrix: run as a script by org.jruby.Main.
require "set"

name = ARGV.first || "nobody"
greeting = ENV.fetch("GREETING", "Hi")
greet = ->(who) { "#{greeting}, #{who}!" }

fruits = %w[pear fig banana apple kiwi]
kept = fruits.select { |f| f.length > 3 }.map(&:upcase).sort
average = kept.sum(&:length).to_f / kept.size
unique = Set.new(kept)

puts "#{greet.call(name)} (JRuby)"
puts "fruits: #{unique.to_a.join(', ')}"
puts format("average length: %.2f", average)
$stderr.puts "JRuby: exiting with status 3"
exit 3
